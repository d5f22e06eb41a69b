"""Integration suite: upstream's multi_bluetooth tests over the virtual radio.

Runs only when an upstream tree is available without network: ``MICROPY_DIR``
or a tree fetched earlier into ``build/upstream``.  Otherwise every test here
is skipped with that reason (the host tests still run).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import suite_report
from integration_support import NO_TREE_REASON, build_tree

from mpoverlay.tree import available_upstream


@pytest.fixture(scope="session")
def built_tree() -> Path:
    if available_upstream(os.environ.get("MICROPY_DIR")) is None:
        pytest.skip(NO_TREE_REASON)
    return build_tree()


def pytest_sessionfinish(session: pytest.Session) -> None:
    # A pytest-xdist worker hands its tables to the controller.
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["suite_report"] = suite_report.export()
