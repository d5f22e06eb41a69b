"""Integration suite: upstream's multi_bluetooth tests over the virtual radio.

Runs only when an upstream tree is available without network: ``MICROPY_DIR``
or a tree fetched earlier into ``build/upstream``.  Otherwise every test here
is skipped with that reason (the host tests still run).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from integration_support import FLASHDEV_REPORTS, NO_TREE_REASON

from mpoverlay.build import UNIX_VARIANTS, build_unix
from mpoverlay.multitest import outcome_summary
from mpoverlay.tree import available_upstream, prepared_tree


@pytest.fixture(scope="session")
def built_tree() -> Path:
    """build/tree prepared from the upstream tree, with both unix variants built."""
    micropy_dir = os.environ.get("MICROPY_DIR")
    if available_upstream(micropy_dir) is None:
        pytest.skip(NO_TREE_REASON)
    tree = prepared_tree(micropy_dir, allow_fetch=False)
    for variant in UNIX_VARIANTS:
        build_unix(tree, variant)
    return tree


# Outcome of every multi_bluetooth case run in this session: {(pair, test): outcome}.
RESULTS: dict[tuple[str, str], str] = {}
# The same for micropython-lib's aioble multitests (test_aioble.py).
AIOBLE_RESULTS: dict[tuple[str, str], str] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print each suite as a table: one row per test, one column per stack pair."""
    for title, results in (
        ("multi_bluetooth over the virtual radio", RESULTS),
        ("aioble multitests over the virtual radio", AIOBLE_RESULTS),
    ):
        if results:
            _write_table(terminalreporter, title, results)
    if FLASHDEV_REPORTS:
        terminalreporter.section("flashdev: power cuts and concurrency")
        for report in FLASHDEV_REPORTS:
            terminalreporter.write_line(report)


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
