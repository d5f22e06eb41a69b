"""Fixtures for the bond-store host tests (see tlvstore_harness.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from tlvstore_harness import Lib, build


@pytest.fixture(scope="session")
def lib() -> Lib:
    # Under the sanitizer job (test_sanitizers.py) the same tests run against
    # the ASan/UBSan build.
    return Lib(build(os.environ.get("MP_TLVSTORE_VARIANT", "plain")))


@pytest.fixture(scope="session")
def small_lib() -> Lib:
    return Lib(build("small"))


@pytest.fixture
def mem(lib: Lib) -> Iterator[Lib]:
    """The library with a fresh, empty in-memory filesystem."""
    lib.mem_reset()
    yield lib
    lib.mem_reset()
