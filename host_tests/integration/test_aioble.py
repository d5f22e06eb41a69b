"""micropython-lib's aioble multitests (upstream's and ours) over the virtual radio.

Each (stack pair, test) is one pytest case whose outcome must match
``expected_aioble.toml``: a regression fails, and so does a test that starts
passing while the table still names a cause for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_support import NO_TREE_REASON, upstream_available
from suite_report import AIOBLE_RESULTS

from mpoverlay import REPO_ROOT, aioble, expectations

EXPECTED = expectations.load("aioble")
PAIRS = ["/".join(pair) for pair in aioble.PAIRS]
OUR_TESTS = sorted(p.name for p in (REPO_ROOT / aioble.MULTITESTS_DIR).glob("*.py"))
TESTS = sorted(EXPECTED["upstream_tests"] + OUR_TESTS)
CASES = [(pair, test) for pair in PAIRS for test in TESTS]


def expected_outcome(pair: str, test: str) -> tuple[str, str]:
    entry = EXPECTED["pairs"][pair].get(test)
    if entry is None:
        return "pass", ""
    return entry["outcome"], EXPECTED["causes"][entry["cause"]]


def test_expected_table_has_every_pair_and_only_known_tests_and_causes() -> None:
    assert set(EXPECTED["pairs"]) == set(PAIRS)
    assert OUR_TESTS, f"no aioble multitests of ours in {aioble.MULTITESTS_DIR}"
    for pair, entries in EXPECTED["pairs"].items():
        unknown = set(entries) - set(TESTS)
        assert not unknown, f"{pair}: expected_aioble.toml names unknown tests: {unknown}"
        for test, entry in entries.items():
            assert entry["outcome"] in ("fail", "skip", "timeout"), (pair, test)
            assert entry["cause"] in EXPECTED["causes"], (pair, test)
    used = {e["cause"] for entries in EXPECTED["pairs"].values() for e in entries.values()}
    assert used == set(EXPECTED["causes"]), "a cause that no cell names"


def test_aioble_directory_matches_the_table(built_tree: Path) -> None:
    assert [t.name for t in aioble.aioble_tests(built_tree)] == TESTS


@pytest.mark.skipif(not upstream_available(), reason=NO_TREE_REASON)
@pytest.mark.parametrize(("pair", "test"), CASES, ids=[f"{p}:{t}" for p, t in CASES])
def test_aioble(built_tree: Path, pair: str, test: str) -> None:
    stacks = tuple(pair.split("/"))
    cells = aioble.run(built_tree, aioble.select_tests(built_tree, [test]), [stacks])
    result = cells[pair, test]
    AIOBLE_RESULTS[pair, test] = result.outcome
    outcome, cause = expected_outcome(pair, test)
    assert result.outcome == outcome, (
        f"{pair} {test}: expected {outcome} ({cause or 'should pass'}), got {result.outcome}\n"
        f"{result.detail}"
    )
