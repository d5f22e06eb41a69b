"""expected.toml, the one source of every table's expectations, and how cells are judged.

These run without an upstream tree: a broken table, a pair the tooling runs
that the table does not name, or a pinned failure that fails differently must
turn CI red, not only the integration suite.
"""

from __future__ import annotations

import copy

import pytest

from mpoverlay import REPO_ROOT, aioble, expectations, matrix
from mpoverlay.build import UNIX_VARIANTS
from mpoverlay.multitest import STACK_PAIRS

PAIRS = ["/".join(pair) for pair in STACK_PAIRS]
# The Bumble peer suite runs each stack the tooling builds (bumble_peer_rig.STACKS).
COLUMNS = {
    "multi_bluetooth": PAIRS,
    "aioble": PAIRS,
    "matrix": PAIRS,
    "bumble_peer": list(UNIX_VARIANTS),
}
# What the instances printed when ble_mtu_peripheral.py failed as pinned
# (btstack/btstack, 2026-12-06), cut to the lines the signature names.
MTU_PERIPHERAL_FAILURE = """\
### TEST ###
--- instance0 ---
_IRQ_GATTC_NOTIFY 64 0
gattc_write
_IRQ_GATTC_WRITE_DONE
gatts_notify
_IRQ_CENTRAL_DISCONNECT
Traceback (most recent call last):
ValueError: Timeout waiting for 3
### TRUTH ###
--- instance0 ---
"""
CAPTURE_LINES = "".join(f"written b'central{i}' True\n" for i in range(5))


def columns() -> dict[str, list[str]]:
    return COLUMNS


@pytest.fixture
def edited(monkeypatch: pytest.MonkeyPatch) -> dict:
    """A copy of expected.toml's data that the judging functions then read."""
    data = copy.deepcopy(expectations.load())
    monkeypatch.setattr(expectations, "load", lambda: data)
    return data


def test_the_file_is_sound_and_names_every_pair_the_tooling_runs() -> None:
    assert expectations.problems(columns()) == []


def test_a_table_without_a_pair_the_tooling_runs_is_reported(edited: dict) -> None:
    del edited["multi_bluetooth"]["pairs"]["nimble/btstack"]
    assert expectations.problems(columns()) == [
        "[multi_bluetooth] names ['btstack/btstack', 'btstack/nimble', 'nimble/nimble'], runs "
        + str(sorted(PAIRS))
    ]


def test_a_pinned_failure_without_signature_or_with_an_unknown_cause_is_reported(
    edited: dict,
) -> None:
    edited["multi_bluetooth"]["pairs"]["nimble/nimble"] = {
        "ble_mtu.py": {"outcome": "fail", "cause": "long_write"},
        "ble_gap_pair.py": {"outcome": "skip", "cause": "no_such_cause"},
    }
    found = expectations.problems(columns())
    assert any("ble_mtu.py: a cell that may fail needs a signature" in p for p in found)
    assert any("ble_gap_pair.py: unknown cause 'no_such_cause'" in p for p in found)


def test_a_pinned_failure_must_fail_with_its_signature() -> None:
    pair, test = "btstack/btstack", "ble_mtu_peripheral.py"
    assert (
        expectations.difference("multi_bluetooth", pair, test, "fail", MTU_PERIPHERAL_FAILURE)
        == ""
    )
    # Failing at another step (a timeout earlier in the test) is not the pinned failure.
    earlier = "### TEST ###\n--- instance1 ---\nTraceback\nValueError: Timeout waiting for 7\n"
    assert "not as pinned (long_write)" in expectations.difference(
        "multi_bluetooth", pair, test, "fail", earlier
    )
    # The expected output (### TRUTH ###) does not count as what was shown.
    truth_only = "### TEST ###\nTraceback\n### TRUTH ###\n" + MTU_PERIPHERAL_FAILURE
    assert expectations.difference("multi_bluetooth", pair, test, "fail", truth_only)
    assert expectations.difference("multi_bluetooth", pair, test, "pass") == (
        f"{pair} {test}: pass, expected fail"
    )


def test_an_unlisted_cell_must_pass() -> None:
    cell = ("nimble/nimble", "ble_gap_pair_bond_restart.py")
    assert expectations.difference("multi_bluetooth", *cell, "fail", "### TEST ###\n")
    assert expectations.difference("multi_bluetooth", *cell, "pass") == ""
    assert expectations.difference("multi_bluetooth", *cell, "excluded") == ""


def test_each_table_is_its_own() -> None:
    assert (
        expectations.difference(
            "aioble",
            "btstack/btstack",
            "perf_l2cap.py",
            "fail",
            "### TEST ###\nAttributeError: 'BLE' object has no attribute 'l2cap_listen'\n"
            "AttributeError: 'BLE' object has no attribute 'l2cap_connect'\n",
        )
        == ""
    )
    assert expectations.difference("aioble", "nimble/nimble", "perf_l2cap.py", "fail", "")


def test_an_either_cell_may_pass_or_fail_but_its_passing_half_is_checked() -> None:
    pair, test = "nimble/nimble", "ble_write_capture.py"
    assert expectations.difference("aioble", pair, test, "pass") == ""
    lossy = "### TEST ###\n--- instance0 ---\nwritten b'central0'\nwritten b'central2'\n"
    assert expectations.difference("aioble", pair, test, "fail", lossy + CAPTURE_LINES) == ""
    # A write lost on the capturing characteristic is a regression.
    lost = CAPTURE_LINES.replace("written b'central3' True\n", "")
    assert "not as pinned (write_timing)" in expectations.difference(
        "aioble", pair, test, "fail", lossy + lost
    )
    assert expectations.difference("aioble", pair, test, "timeout")
    # Both outcomes print as "either", so two runs print the same table.
    assert {expectations.shown("aioble", pair, test, o) for o in ("pass", "fail")} == {"either"}
    assert expectations.shown("aioble", pair, test, "timeout") == "timeout"


def test_the_bumble_peer_table_lists_no_cell() -> None:
    # test_bumble_peer.py asserts every case end to end and has no notion of
    # a pinned failure: a cell listed here would be ignored, so none may be.
    stacks = expectations.load()["bumble_peer"]["stacks"]
    assert {stack: cells for stack, cells in stacks.items() if cells} == {}


def test_radio_counts_are_for_our_tests_and_start_with_the_pairing() -> None:
    ours = {
        "multi_bluetooth": {
            p.name for p in (REPO_ROOT / "tests" / "multi_bluetooth").glob("*.py")
        },
        "aioble": {p.name for p in (REPO_ROOT / aioble.MULTITESTS_DIR).glob("*.py")},
        "matrix": {matrix.cell_key(c, public) for c in matrix.CELLS for public in (True, False)},
    }
    # Every cell of the matrix claims that its reconnection did not pair.
    assert set(expectations.load()["radio"]["matrix"]) == ours["matrix"]
    for table, counts in expectations.load()["radio"].items():
        assert set(counts) <= ours[table], table
        for test, per_connection in counts.items():
            assert per_connection[0] == 1 and set(per_connection) <= {0, 1}, test
