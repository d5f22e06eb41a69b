"""Helpers shared by the integration tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import os

from mpoverlay.tree import available_upstream

NO_TREE_REASON = (
    "integration suite skipped: no upstream tree found "
    "(set MICROPY_DIR=<MicroPython v1.28.0 tree with submodules>)"
)

# Figures of the flashdev tests (power-cut sweeps, concurrency), as printed
# text; conftest.py shows them in the terminal summary.
FLASHDEV_REPORTS: list[str] = []


def upstream_available() -> bool:
    return available_upstream(os.environ.get("MICROPY_DIR")) is not None
