"""Fixtures for the bond store's host tests (see bondstore_harness.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from bondstore_harness import Lib, build


@pytest.fixture(scope="session")
def lib() -> Lib:
    # test_sanitizers.py reruns these tests against each configuration's
    # ASan/UBSan build (MP_BONDSTORE_CONFIG, MP_BONDSTORE_SANITIZE).
    config = os.environ.get("MP_BONDSTORE_CONFIG", "default")
    return Lib(build(config, sanitize=bool(os.environ.get("MP_BONDSTORE_SANITIZE"))))


@pytest.fixture(params=[False, True], ids=["in_place", "atomic"])
def fs(lib: Lib, request: pytest.FixtureRequest) -> Iterator[Lib]:
    """The library on an empty filesystem: non-atomic (FAT, POSIX), then atomic (littlefs)."""
    lib.reset(atomic=request.param)
    yield lib
    lib.reset()
