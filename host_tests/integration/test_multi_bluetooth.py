"""tests/multi_bluetooth (upstream's and ours) between two unix instances over the radio.

Each (stack pair, test) is one pytest case whose outcome must match
``expected.toml``: a regression fails, and so does a test that starts
passing without the table being updated (so the README stays true).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from integration_support import NO_TREE_REASON, upstream_available
from suite_report import RESULTS

from mpoverlay import REPO_ROOT, expectations
from mpoverlay.multitest import EXCLUDED, STACK_PAIRS, run_suite, suite_tests

EXPECTED = expectations.load("multi_bluetooth")
# Every pair the tooling knows runs; the table must name each (see below).
PAIRS = ["/".join(pair) for pair in STACK_PAIRS]
OUR_TESTS = sorted(p.name for p in (REPO_ROOT / "tests" / "multi_bluetooth").glob("*.py"))
TESTS = sorted(EXPECTED["upstream_tests"] + OUR_TESTS)
CASES = [(pair, test) for pair in PAIRS for test in TESTS]


def expected_outcome(pair: str, test: str) -> tuple[str, str]:
    if test in EXCLUDED:
        return "excluded", EXCLUDED[test]
    entry = EXPECTED["pairs"].get(pair, {}).get(test)
    if entry is None:
        return "pass", ""
    return entry["outcome"], entry["cause"]


def missing_signature(pair: str, test: str, output: str) -> list[str]:
    """The pinned failure's signature lines that ``output`` lacks."""
    entry = EXPECTED["pairs"].get(pair, {}).get(test, {})
    return [line for line in entry.get("signature", []) if not re.search(line, output)]


def test_expected_table_has_every_stack_pair() -> None:
    # A pair missing from the table would otherwise just never be checked.
    assert sorted(EXPECTED["pairs"]) == sorted(PAIRS)


def test_expected_table_names_only_known_tests() -> None:
    for pair, entries in EXPECTED["pairs"].items():
        unknown = set(entries) - set(TESTS)
        assert not unknown, f"{pair}: expected.toml names tests that do not exist: {unknown}"
        for test, entry in entries.items():
            assert entry["outcome"] in ("fail", "skip", "timeout"), (pair, test)
            assert entry["cause"], (pair, test)
            if entry["outcome"] == "fail":
                assert entry.get("signature"), f"{pair} {test}: a pinned failure needs a signature"


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
    missing = missing_signature(pair, test, result.detail)
    assert not missing, (
        f"{pair} {test} failed, but not as pinned ({cause}): {missing}\n{result.detail}"
    )


def test_a_failure_with_another_signature_is_not_the_pinned_one() -> None:
    pair, test = "btstack/btstack", "ble_mtu_peripheral.py"
    assert missing_signature(pair, test, "Traceback\nValueError: Timeout waiting for 7")
