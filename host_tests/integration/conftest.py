"""Integration suite: upstream's multi_bluetooth tests over the virtual radio.

Runs only when an upstream tree is available without network: ``MICROPY_DIR``
or a tree fetched earlier into ``build/upstream``.  Otherwise every test here
is skipped with that reason (the host tests still run).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import suite_report
from integration_support import NO_TREE_REASON

from mpoverlay import BUILD_DIR
from mpoverlay.build import UNIX_VARIANTS, build_unix
from mpoverlay.tree import available_upstream, prepared_tree


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """One process at a time (the suite's workers share build/tree)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def built_tree() -> Path:
    """build/tree prepared from the upstream tree, with both unix variants built
    (by the first worker; the others find it up to date)."""
    micropy_dir = os.environ.get("MICROPY_DIR")
    if available_upstream(micropy_dir) is None:
        pytest.skip(NO_TREE_REASON)
    with _exclusive(BUILD_DIR / ".built_tree.lock"):
        tree = prepared_tree(micropy_dir, allow_fetch=False)
        for variant in UNIX_VARIANTS:
            build_unix(tree, variant)
    return tree


def pytest_sessionfinish(session: pytest.Session) -> None:
    # A pytest-xdist worker hands its tables to the controller.
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["suite_report"] = suite_report.export()
