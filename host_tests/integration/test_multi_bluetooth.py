"""tests/multi_bluetooth (upstream's and ours) between two unix instances over the radio.

Each (stack pair, test) is one pytest case whose outcome must match
``expected.toml``: a regression fails, and so does a test that starts
passing without the table being updated (so the README stays true).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_support import NO_TREE_REASON, assert_as_expected, trace_dir, upstream_available
from suite_report import RESULTS

from mpoverlay import REPO_ROOT, expectations
from mpoverlay.multitest import EXCLUDED, STACK_PAIRS, run_suite, suite_tests

EXPECTED = expectations.load()["multi_bluetooth"]
# Every pair the tooling knows runs (expectations.problems checks that the
# table names each, test_expectations.py).
PAIRS = ["/".join(pair) for pair in STACK_PAIRS]
OUR_TESTS = sorted(p.name for p in (REPO_ROOT / "tests" / "multi_bluetooth").glob("*.py"))
TESTS = sorted(EXPECTED["upstream_tests"] + OUR_TESTS)
CASES = [(pair, test) for pair in PAIRS for test in TESTS]


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
    trace = trace_dir("multi_bluetooth", test, tmp_path)
    [result] = run_suite(
        built_tree, [built_tree / "tests" / "multi_bluetooth" / test], stacks, trace
    )
    RESULTS[pair, test] = expectations.shown("multi_bluetooth", pair, test, result.outcome)
    if test in EXCLUDED:
        assert result.outcome == "excluded", result.detail
        return
    assert_as_expected("multi_bluetooth", pair, test, result, trace)
