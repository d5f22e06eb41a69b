"""make multitest / make aioble fail when a cell differs from its expectation."""

from __future__ import annotations

from mpoverlay import expectations


def test_a_pinned_failure_is_as_expected_and_a_pass_there_is_not() -> None:
    cells = [("btstack/btstack", "ble_mtu_peripheral.py", "fail")]
    assert expectations.unexpected("multi_bluetooth", cells) == []
    cells = [("btstack/btstack", "ble_mtu_peripheral.py", "pass")]
    assert expectations.unexpected("multi_bluetooth", cells) == [
        "btstack/btstack ble_mtu_peripheral.py: pass, expected fail"
    ]


def test_an_unlisted_cell_must_pass() -> None:
    cells = [("nimble/nimble", "ble_gap_pair_bond_restart.py", "fail")]
    assert expectations.unexpected("multi_bluetooth", cells)
    assert not expectations.unexpected("multi_bluetooth", [(*cells[0][:2], "pass")])
    assert not expectations.unexpected("multi_bluetooth", [(*cells[0][:2], "excluded")])


def test_aioble_cells_use_their_own_table() -> None:
    assert not expectations.unexpected("aioble", [("btstack/btstack", "perf_l2cap.py", "fail")])
    assert expectations.unexpected("aioble", [("nimble/nimble", "perf_l2cap.py", "fail")])
