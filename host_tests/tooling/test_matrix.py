"""The bonding matrix's cells, written from our template test (no firmware needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpoverlay import REPO_ROOT, expectations, matrix

TEST_DIR = REPO_ROOT / "tests" / "multi_bluetooth"


def test_every_cell_gets_its_parameters_and_expected_output(tmp_path: Path) -> None:
    files = matrix.write_cells(TEST_DIR, tmp_path)
    assert len(files) == len(matrix.CELLS) == 6
    for cell, path in files.items():
        source = path.read_text()
        assert f"LE_SECURE = {cell.le_secure!r}\n" in source
        assert f"RESTART = {cell.restart!r}" in source
        exp = path.with_name(path.name + ".exp").read_text()
        reboots = [line for line in exp.splitlines() if line.startswith("WAIT_FOR_REBOOT")]
        if cell.restart == "none":
            assert reboots == []
        else:
            instance = 0 if cell.restart == "peripheral" else 1
            assert reboots == [f"WAIT_FOR_REBOOT instance{instance}_restarted 0"]
            # Printed by the restarting instance, right after its bond.
            section = exp.split(f"--- instance{instance} ---\n", 1)[1]
            lines = section.splitlines()
            assert lines[lines.index(reboots[0]) - 1].startswith(f"{cell.restart} bonds")


def test_template_without_a_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="RESTART"):
        matrix.cell_source("LE_SECURE = True\n", matrix.CELLS[0])


def test_every_cell_is_expected_to_pass() -> None:
    # Both stacks keep their identity and bonds across restarts, with public
    # and with random static addresses.
    assert all(
        matrix.expected_outcome(pair, cell, public) == "pass"
        for pair in matrix.PAIRS
        for cell in matrix.CELLS
        for public in (False, True)
    )


def test_table_names_the_cause_of_a_red_cell_and_counts_surprises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    restart_nimble = next(c for c in matrix.CELLS if c.restart == "peripheral")
    real = matrix.expectation

    def expectation(
        pair: tuple[str, str], cell: matrix.Cell, public: bool
    ) -> expectations.Expectation:
        if pair == ("nimble", "nimble") and cell.restart == "peripheral" and not public:
            return expectations.Expectation("fail", "known", "a known cause")
        return real(pair, cell, public)

    monkeypatch.setattr(matrix, "expectation", expectation)
    cells = {(pair, cell): "pass" for pair in matrix.PAIRS for cell in matrix.CELLS}
    cells[(("nimble", "nimble"), restart_nimble)] = "fail"
    cells[(("btstack", "btstack"), restart_nimble)] = "fail"
    text = matrix.format_matrix(cells, public_addresses=False)
    assert "fail [1]" in text
    assert "[1] a known cause" in text
    # The known cause covers the other nimble/nimble peripheral-restart cell
    # (SC or legacy), which passed; the btstack/btstack failure has no cause.
    assert text.splitlines()[-1] == "2 fail, 22 pass; 2 not as expected"
