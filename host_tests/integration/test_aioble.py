"""micropython-lib's aioble multitests (upstream's and ours) over the virtual radio.

Each (stack pair, test) is one pytest case whose outcome must match
expected.toml's ``[aioble]`` table: a regression fails, and so does a test that starts
passing while the table still names a cause for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_support import NO_TREE_REASON, assert_as_expected, trace_dir, upstream_available
from suite_report import AIOBLE_RESULTS

from mpoverlay import REPO_ROOT, aioble, expectations

EXPECTED = expectations.load()["aioble"]
PAIRS = ["/".join(pair) for pair in aioble.PAIRS]
OUR_TESTS = sorted(p.name for p in (REPO_ROOT / aioble.MULTITESTS_DIR).glob("*.py"))
TESTS = sorted(EXPECTED["upstream_tests"] + OUR_TESTS)
CASES = [(pair, test) for pair in PAIRS for test in TESTS]


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
    trace = trace_dir("aioble", test, tmp_path)
    cells = aioble.run(built_tree, aioble.select_tests(built_tree, [test]), [stacks], trace=trace)
    result = cells[pair, test]
    AIOBLE_RESULTS[pair, test] = expectations.shown("aioble", pair, test, result.outcome)
    assert_as_expected("aioble", pair, test, result, trace)
