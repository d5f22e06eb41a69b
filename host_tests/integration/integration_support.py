"""Helpers shared by the integration tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import os

import suite_report

from mpoverlay.tree import available_upstream

NO_TREE_REASON = (
    "integration suite skipped: no upstream tree found "
    "(set MICROPY_DIR=<MicroPython v1.28.0 tree with submodules>)"
)

# Figures of the flashdev tests (power-cut sweeps, concurrency), as printed
# text, shown in the terminal summary (host_tests/suite_report.py).
FLASHDEV_REPORTS = suite_report.FLASHDEV_REPORTS


def upstream_available() -> bool:
    return available_upstream(os.environ.get("MICROPY_DIR")) is not None
