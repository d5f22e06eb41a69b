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
from integration_support import FLASHDEV_REPORTS, NO_TREE_REASON

from mpoverlay import BUILD_DIR
from mpoverlay.build import UNIX_VARIANTS, build_unix
from mpoverlay.multitest import outcome_summary
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


# Outcome of every multi_bluetooth case run in this session: {(pair, test): outcome}.
RESULTS: dict[tuple[str, str], str] = {}
# The same for micropython-lib's aioble multitests (test_aioble.py).
AIOBLE_RESULTS: dict[tuple[str, str], str] = {}


# With pytest-xdist each worker collects its own share: workers hand theirs
# to the controller, which prints the tables.
def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["results"] = [[p, t, o] for (p, t), o in RESULTS.items()]
        workeroutput["aioble_results"] = [[p, t, o] for (p, t), o in AIOBLE_RESULTS.items()]
        workeroutput["flashdev_reports"] = list(FLASHDEV_REPORTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    output = getattr(node, "workeroutput", {})
    RESULTS.update({(p, t): o for p, t, o in output.get("results", [])})
    AIOBLE_RESULTS.update({(p, t): o for p, t, o in output.get("aioble_results", [])})
    FLASHDEV_REPORTS.extend(output.get("flashdev_reports", []))


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
