"""The bonding matrix: stack pairs x legacy/SC x which side restarts.

One multitest, ``ble_gap_bond_matrix.py``, holds a cell: pair and bond,
optionally restart one side, reconnect and re-encrypt without pairing again.
Its parameters are two assignments at the top of the file; each cell runs a
copy with other values, written next to the prepared tree's tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import expectations
from .multitest import STACK_PAIRS, Result, markdown_table, outcome_summary

TEMPLATE = "ble_gap_bond_matrix.py"
# instance0 is the peripheral, instance1 the central: the two mixed pairs
# cover both roles of each stack.
PAIRS = STACK_PAIRS
RESTARTS = ("none", "peripheral", "central")
PAIRINGS = (("legacy", False), ("SC", True))

ADDRESSES = ("public", "random")


@dataclass(frozen=True)
class Cell:
    pairing: str  # "legacy" / "SC"
    le_secure: bool
    restart: str  # "none" / "peripheral" / "central"

    @property
    def name(self) -> str:
        return f"{self.pairing}, restart {self.restart}"

    @property
    def file_stem(self) -> str:
        return f"ble_gap_bond_matrix_{self.pairing.lower()}_{self.restart}"


CELLS = tuple(Cell(p, sc, r) for p, sc in PAIRINGS for r in RESTARTS)

_PARAM_RE = {
    "LE_SECURE": re.compile(r"^LE_SECURE = .*$", re.M),
    "RESTART": re.compile(r"^RESTART = .*$", re.M),
}


def cell_source(template: str, cell: Cell) -> str:
    """The template with the cell's parameter values."""
    for name, value in (("LE_SECURE", repr(cell.le_secure)), ("RESTART", repr(cell.restart))):
        template, n = _PARAM_RE[name].subn(f"{name} = {value}", template, count=1)
        if n != 1:
            raise ValueError(f"{TEMPLATE}: no '{name} = ...' line to set")
    return template


def cell_expected(expected: str, cell: Cell) -> str:
    """The template's expected output (no restart) with the cell's restart:
    run-multitests.py prints the restarting instance's WAIT_FOR_REBOOT line
    after the bond is reported."""
    if cell.restart == "none":
        return expected
    instance = 0 if cell.restart == "peripheral" else 1
    bond_line = re.compile(rf"^{cell.restart} bonds .*$", re.M)
    reboot = f"WAIT_FOR_REBOOT instance{instance}_restarted 0"
    out, n = bond_line.subn(lambda m: f"{m.group(0)}\n{reboot}", expected, count=1)
    if n != 1:
        raise ValueError(f"{TEMPLATE}.exp: no '{cell.restart} bonds' line")
    return out


def write_cells(test_dir: Path, out_dir: Path) -> dict[Cell, Path]:
    """Write one test (and its expected output) per cell into out_dir."""
    template = (test_dir / TEMPLATE).read_text()
    expected = (test_dir / (TEMPLATE + ".exp")).read_text()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for cell in CELLS:
        path = out_dir / f"{cell.file_stem}.py"
        path.write_text(cell_source(template, cell))
        path.with_name(path.name + ".exp").write_text(cell_expected(expected, cell))
        files[cell] = path
    return files


def cell_key(cell: Cell, public_addresses: bool) -> str:
    """The cell's name in expected.toml's [matrix] table, e.g. "random:SC:peripheral"."""
    return f"{'public' if public_addresses else 'random'}:{cell.pairing}:{cell.restart}"


def expectation(
    pair: tuple[str, str], cell: Cell, public_addresses: bool
) -> expectations.Expectation:
    return expectations.expect("matrix", "/".join(pair), cell_key(cell, public_addresses))


def cause(pair: tuple[str, str], cell: Cell, public_addresses: bool) -> str:
    """Why a cell is expected to fail, or "" if it must pass."""
    return expectation(pair, cell, public_addresses).cause


def expected_outcome(pair: tuple[str, str], cell: Cell, public_addresses: bool) -> str:
    return expectation(pair, cell, public_addresses).outcome


RunPair = Callable[[tuple[str, str], list[Path]], list[Result]]


def run(files: dict[Cell, Path], run_pair: RunPair) -> dict[tuple[tuple[str, str], Cell], str]:
    """Outcome of every (pair, cell), running each pair's cells in one go."""
    outcomes = {}
    by_path = {path.name: cell for cell, path in files.items()}
    for pair in PAIRS:
        for r in run_pair(pair, list(files.values())):
            outcomes[(pair, by_path[r.test])] = r.outcome
    return outcomes


def format_matrix(
    outcomes: dict[tuple[tuple[str, str], Cell], str], public_addresses: bool
) -> str:
    """A Markdown table: a row per stack pair, a column per cell."""
    head = ["peripheral/central", *(c.name for c in CELLS)]
    rows = []
    notes: dict[str, int] = {}
    for pair in PAIRS:
        row = ["/".join(pair)]
        for cell in CELLS:
            outcome = outcomes.get((pair, cell), "not run")
            why = cause(pair, cell, public_addresses) if outcome != "pass" else ""
            if why:
                outcome += f" [{notes.setdefault(why, len(notes) + 1)}]"
            row.append(outcome)
        rows.append(row)
    addresses = "public" if public_addresses else "random static (no public address)"
    lines = [f"addresses: {addresses}", *markdown_table([head, *rows])]
    lines += [f"[{n}] {why}" for why, n in notes.items()]
    unexpected = sum(
        1
        for (pair, cell), outcome in outcomes.items()
        if not expectation(pair, cell, public_addresses).admits(outcome)
    )
    lines.append(f"{outcome_summary(outcomes.values())}; {unexpected} not as expected")
    return "\n".join(lines)
