"""tests/multi_bluetooth (upstream's and ours) between two unix instances over the radio.

Each (stack pair, test) is one pytest case whose outcome must match
``expected.toml``: a regression fails, and so does a test that starts
passing without the table being updated (so the README stays true).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import RESULTS
from integration_support import NO_TREE_REASON, upstream_available

from mpoverlay import REPO_ROOT
from mpoverlay.multitest import EXCLUDED, run_suite, suite_tests

EXPECTED = tomllib.loads((Path(__file__).parent / "expected.toml").read_text())
PAIRS = list(EXPECTED["pairs"])
OUR_TESTS = sorted(p.name for p in (REPO_ROOT / "tests" / "multi_bluetooth").glob("*.py"))
TESTS = sorted(EXPECTED["upstream_tests"] + OUR_TESTS)
CASES = [(pair, test) for pair in PAIRS for test in TESTS]


def expected_outcome(pair: str, test: str) -> tuple[str, str]:
    if test in EXCLUDED:
        return "excluded", EXCLUDED[test]
    entry = EXPECTED["pairs"][pair].get(test)
    if entry is None:
        return "pass", ""
    return entry["outcome"], entry["cause"]


def test_expected_table_names_only_known_tests() -> None:
    for pair, entries in EXPECTED["pairs"].items():
        unknown = set(entries) - set(TESTS)
        assert not unknown, f"{pair}: expected.toml names tests that do not exist: {unknown}"
        for test, entry in entries.items():
            assert entry["outcome"] in ("fail", "skip", "timeout"), (pair, test)
            assert entry["cause"], (pair, test)


def test_suite_directory_matches_the_table(built_tree: Path) -> None:
    assert [t.name for t in suite_tests(built_tree)] == TESTS


@pytest.mark.skipif(not upstream_available(), reason=NO_TREE_REASON)
@pytest.mark.parametrize(("pair", "test"), CASES, ids=[f"{p}:{t}" for p, t in CASES])
def test_multi_bluetooth(built_tree: Path, pair: str, test: str) -> None:
    stacks = tuple(pair.split("/"))
    [result] = run_suite(built_tree, [built_tree / "tests" / "multi_bluetooth" / test], stacks)
    RESULTS[pair, test] = result.outcome
    outcome, cause = expected_outcome(pair, test)
    assert result.outcome == outcome, (
        f"{pair} {test}: expected {outcome} ({cause or 'should pass'}), got {result.outcome}\n"
        f"{result.detail}"
    )
