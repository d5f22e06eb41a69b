"""Fixtures for the virtual radio tests.

pytest-asyncio is not available, so each test runs its coroutine through the
``run`` fixture, which bounds it with ``asyncio.wait_for``.  Helpers live in
``vradio_testlib`` (this directory is on sys.path in pytest's default
"prepend" import mode).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from vradio_testlib import Runner

TEST_TIMEOUT_S = 15.0


@pytest.fixture
def run() -> Runner:
    """Run a coroutine to completion in a fresh loop, failing after a timeout."""

    def runner(coroutine: Coroutine[Any, Any, Any], timeout: float = TEST_TIMEOUT_S) -> Any:
        return asyncio.run(asyncio.wait_for(coroutine, timeout))

    return runner
