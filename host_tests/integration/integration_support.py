"""Helpers shared by the integration tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import suite_report

from mpoverlay import BUILD_DIR
from mpoverlay.build import UNIX_VARIANTS, build_unix
from mpoverlay.tree import available_upstream, prepared_tree

NO_TREE_REASON = (
    "integration suite skipped: no upstream tree found "
    "(set MICROPY_DIR=<MicroPython v1.28.0 tree with submodules>)"
)

# Figures of the flashdev tests (power-cut sweeps, concurrency), as printed
# text, shown in the terminal summary (host_tests/suite_report.py).
FLASHDEV_REPORTS = suite_report.FLASHDEV_REPORTS


def upstream_available() -> bool:
    return available_upstream(os.environ.get("MICROPY_DIR")) is not None


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """One process at a time (the suite's workers share build/tree)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def build_tree() -> Path:
    """build/tree prepared from the upstream tree, with both unix variants built
    (by whoever comes first: the suite's background build, see
    host_tests/conftest.py, or a worker; the others find it up to date)."""
    with _exclusive(BUILD_DIR / ".built_tree.lock"):
        tree = prepared_tree(os.environ.get("MICROPY_DIR"), allow_fetch=False)
        for variant in UNIX_VARIANTS:
            build_unix(tree, variant)
    return tree
