"""What the integration suite prints at the end: its tables and figures.

Tests add to these as they run (in each pytest-xdist worker); the workers
hand theirs to the controller (host_tests/conftest.py), which prints them.
"""

from __future__ import annotations

import pytest

from mpoverlay.multitest import outcome_summary

# Outcome of every multi_bluetooth case run in this session: {(pair, test): outcome}.
RESULTS: dict[tuple[str, str], str] = {}
# The same for micropython-lib's aioble multitests (test_aioble.py).
AIOBLE_RESULTS: dict[tuple[str, str], str] = {}
# Figures of the flashdev tests (power-cut sweeps, concurrency), as printed text.
FLASHDEV_REPORTS: list[str] = []


def export() -> dict[str, list]:
    """This process's share, as JSON-able data (a worker's output)."""
    return {
        "results": [[p, t, o] for (p, t), o in RESULTS.items()],
        "aioble_results": [[p, t, o] for (p, t), o in AIOBLE_RESULTS.items()],
        "flashdev_reports": list(FLASHDEV_REPORTS),
    }


def merge(output: dict[str, list]) -> None:
    RESULTS.update({(p, t): o for p, t, o in output.get("results", [])})
    AIOBLE_RESULTS.update({(p, t): o for p, t, o in output.get("aioble_results", [])})
    FLASHDEV_REPORTS.extend(output.get("flashdev_reports", []))


def write(tr: pytest.TerminalReporter) -> None:
    """Print each suite as a table: one row per test, one column per stack pair."""
    for title, results in (
        ("multi_bluetooth over the virtual radio", RESULTS),
        ("aioble multitests over the virtual radio", AIOBLE_RESULTS),
    ):
        if results:
            _write_table(tr, title, results)
    if FLASHDEV_REPORTS:
        tr.section("flashdev: power cuts and concurrency")
        for report in sorted(FLASHDEV_REPORTS):
            tr.write_line(report)


def _write_table(
    tr: pytest.TerminalReporter, title: str, results: dict[tuple[str, str], str]
) -> None:
    pairs = sorted({p for p, _ in results}, key=lambda p: (p.split("/")[0] != p.split("/")[1], p))
    tests = sorted({t for _, t in results})
    width = max(len(t) for t in tests)
    tr.section(title)
    tr.write_line(" | ".join([f"{'test':<{width}}", *pairs]))
    for test in tests:
        cells = [f"{results.get((p, test), '-'):<{len(p)}}" for p in pairs]
        tr.write_line(" | ".join([f"{test:<{width}}", *cells]))
    for pair in pairs:
        outcomes = (outcome for (p, _), outcome in results.items() if p == pair)
        tr.write_line(f"{pair}: {outcome_summary(outcomes)}")
