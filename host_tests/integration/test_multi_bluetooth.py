"""tests/multi_bluetooth (upstream's and ours) between two unix instances over the radio.

Each (stack pair, test) is one pytest case whose outcome must match
``expected.toml``: a regression fails, and so does a test that starts
passing without the table being updated (so the README stays true).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_support import NO_TREE_REASON, upstream_available
from suite_report import RESULTS
from vradio.btsnoop import connections

from mpoverlay import REPO_ROOT, expectations
from mpoverlay.multitest import EXCLUDED, STACK_PAIRS, run_suite, suite_tests

EXPECTED = expectations.load()["multi_bluetooth"]
# Every pair the tooling knows runs (expectations.problems checks that the
# table names each, test_expectations.py).
PAIRS = ["/".join(pair) for pair in STACK_PAIRS]
OUR_TESTS = sorted(p.name for p in (REPO_ROOT / "tests" / "multi_bluetooth").glob("*.py"))
TESTS = sorted(EXPECTED["upstream_tests"] + OUR_TESTS)
CASES = [(pair, test) for pair in PAIRS for test in TESTS]
# For our tests that claim a reconnection did not pair again: the SMP Pairing
# Requests the radio saw on each connection, in order.
PAIRING_REQUESTS = expectations.load()["radio"]["multi_bluetooth"]


def test_expected_table_names_only_known_tests() -> None:
    for pair, entries in EXPECTED["pairs"].items():
        unknown = set(entries or {}) - set(TESTS)
        assert not unknown, f"{pair}: expected.toml names tests that do not exist: {unknown}"


def test_suite_directory_matches_the_table(built_tree: Path) -> None:
    assert [t.name for t in suite_tests(built_tree)] == TESTS


@pytest.mark.skipif(not upstream_available(), reason=NO_TREE_REASON)
@pytest.mark.parametrize(("pair", "test"), CASES, ids=[f"{p}:{t}" for p, t in CASES])
def test_multi_bluetooth(built_tree: Path, pair: str, test: str, tmp_path: Path) -> None:
    stacks = tuple(pair.split("/"))
    trace = tmp_path / "trace" if test in PAIRING_REQUESTS else None
    [result] = run_suite(
        built_tree, [built_tree / "tests" / "multi_bluetooth" / test], stacks, trace
    )
    RESULTS[pair, test] = expectations.shown("multi_bluetooth", pair, test, result.outcome)
    if test in EXCLUDED:
        assert result.outcome == "excluded", result.detail
        return
    want = expectations.expect("multi_bluetooth", pair, test)
    differ = expectations.difference("multi_bluetooth", pair, test, result.outcome, result.output)
    assert not differ, f"{differ} ({want.cause or 'should pass'})\n{result.detail}"
    if trace is not None and result.outcome == "pass":
        # The truth from the air, not only the test's word ("secrets written
        # False"): how many SMP Pairing Requests crossed each connection, in
        # instance0's HCI trace.
        seen = [c.pairing_requests for c in connections(trace / "hci0.btsnoop")]
        assert seen == PAIRING_REQUESTS[test], f"SMP Pairing Requests per connection: {seen}"
