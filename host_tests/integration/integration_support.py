"""Helpers shared by the integration tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import suite_report
from vradio.btsnoop import connections

from mpoverlay import BUILD_DIR, expectations
from mpoverlay.build import UNIX_VARIANTS, build_unix
from mpoverlay.multitest import Result
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
    (by the first worker that needs it; the others find it up to date)."""
    with _exclusive(BUILD_DIR / ".built_tree.lock"):
        tree = prepared_tree(os.environ.get("MICROPY_DIR"), allow_fetch=False)
        for variant in UNIX_VARIANTS:
            build_unix(tree, variant)
    return tree


def trace_dir(table: str, test: str, tmp_path: Path) -> Path | None:
    """Where to keep the radio's HCI traces, for a test whose pairings the
    radio checks (expected.toml's [radio]); None for the others."""
    return tmp_path / "trace" if test in expectations.load()["radio"][table] else None


def assert_as_expected(
    table: str, pair: str, test: str, result: Result, trace: Path | None
) -> None:
    """The case's result against expected.toml and, when it passed and claims
    no new pairing, the truth from the air: how many SMP Pairing Requests
    crossed each connection, in instance0's HCI trace (not only the test's
    word, e.g. "secrets written False")."""
    want = expectations.expect(table, pair, test)
    differ = expectations.difference(table, pair, test, result.outcome, result.output)
    assert not differ, f"{differ} ({want.cause or 'should pass'})\n{result.detail}"
    if trace is not None and result.outcome == "pass":
        seen = [c.pairing_requests for c in connections(trace / "hci0.btsnoop")]
        want_counts = expectations.load()["radio"][table][test]
        assert seen == want_counts, f"SMP Pairing Requests per connection: {seen}"
