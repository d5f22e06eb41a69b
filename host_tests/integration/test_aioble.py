"""micropython-lib's aioble multitests (upstream's and ours) over the virtual radio.

Each (stack pair, test) is one pytest case whose outcome must match
expected.toml's ``[aioble]`` table: a regression fails, and so does a test that starts
passing while the table still names a cause for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_support import NO_TREE_REASON, upstream_available
from suite_report import AIOBLE_RESULTS
from vradio.btsnoop import connections

from mpoverlay import REPO_ROOT, aioble, expectations

EXPECTED = expectations.load()["aioble"]
PAIRS = ["/".join(pair) for pair in aioble.PAIRS]
OUR_TESTS = sorted(p.name for p in (REPO_ROOT / aioble.MULTITESTS_DIR).glob("*.py"))
TESTS = sorted(EXPECTED["upstream_tests"] + OUR_TESTS)
CASES = [(pair, test) for pair in PAIRS for test in TESTS]
# SMP Pairing Requests per connection for tests that claim no new pairing.
PAIRING_REQUESTS = expectations.load()["radio"]["aioble"]


def test_expected_table_names_only_known_tests() -> None:
    assert OUR_TESTS, f"no aioble multitests of ours in {aioble.MULTITESTS_DIR}"
    for pair, entries in EXPECTED["pairs"].items():
        unknown = set(entries or {}) - set(TESTS)
        assert not unknown, f"{pair}: expected.toml's [aioble] names unknown tests: {unknown}"


def test_aioble_directory_matches_the_table(built_tree: Path) -> None:
    assert [t.name for t in aioble.aioble_tests(built_tree)] == TESTS


@pytest.mark.skipif(not upstream_available(), reason=NO_TREE_REASON)
@pytest.mark.parametrize(("pair", "test"), CASES, ids=[f"{p}:{t}" for p, t in CASES])
def test_aioble(built_tree: Path, pair: str, test: str, tmp_path: Path) -> None:
    stacks = tuple(pair.split("/"))
    trace = tmp_path / "trace" if test in PAIRING_REQUESTS else None
    cells = aioble.run(built_tree, aioble.select_tests(built_tree, [test]), [stacks], trace=trace)
    result = cells[pair, test]
    AIOBLE_RESULTS[pair, test] = expectations.shown("aioble", pair, test, result.outcome)
    want = expectations.expect("aioble", pair, test)
    differ = expectations.difference("aioble", pair, test, result.outcome, result.output)
    assert not differ, f"{differ} ({want.cause or 'should pass'})\n{result.detail}"
    if trace is not None and result.outcome == "pass":
        # The radio's word that the reconnections did not pair again.
        seen = [c.pairing_requests for c in connections(trace / "hci0.btsnoop")]
        assert seen == PAIRING_REQUESTS[test], f"SMP Pairing Requests per connection: {seen}"
