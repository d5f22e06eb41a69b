"""Integration suite: upstream's multi_bluetooth tests over the virtual radio.

Runs only when an upstream tree is available without network: ``MICROPY_DIR``
or a tree fetched earlier into ``build/upstream``.  Otherwise every test here
is skipped with that reason (the host tests still run).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from integration_support import NO_TREE_REASON

from mpoverlay.build import UNIX_VARIANTS, build_unix
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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the suite as a table: one row per test, one column per stack pair."""
    if not RESULTS:
        return
    pairs = sorted({p for p, _ in RESULTS}, key=lambda p: (p.split("/")[0] != p.split("/")[1], p))
    tests = sorted({t for _, t in RESULTS})
    width = max(len(t) for t in tests)
    tr = terminalreporter
    tr.section("multi_bluetooth over the virtual radio")
    tr.write_line(" | ".join([f"{'test':<{width}}", *pairs]))
    for test in tests:
        cells = [f"{RESULTS.get((p, test), '-'):<{len(p)}}" for p in pairs]
        tr.write_line(" | ".join([f"{test:<{width}}", *cells]))
    for pair in pairs:
        counts: dict[str, int] = {}
        for (p, _), outcome in RESULTS.items():
            if p == pair:
                counts[outcome] = counts.get(outcome, 0) + 1
        tr.write_line(f"{pair}: " + ", ".join(f"{n} {o}" for o, n in sorted(counts.items())))
