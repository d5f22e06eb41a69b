"""The bonding matrix (mpoverlay.matrix) over the virtual radio.

Every stack pair x legacy/SC x restart side (none, peripheral, central), with
public and with random static addresses: each cell must pass, except those
that expected.toml's [matrix] table names (which must still fail as
pinned, so the table stays true).  A passing cell must also show, in the
radio's HCI trace, the SMP Pairing Requests expected.toml's [radio.matrix]
gives: one on the first connection, none on the reconnection.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_support import NO_TREE_REASON, assert_as_expected, trace_dir, upstream_available

from mpoverlay import matrix
from mpoverlay.multitest import run_suite

CASES = [
    (addresses, pair, cell)
    for addresses in matrix.ADDRESSES
    for pair in matrix.PAIRS
    for cell in matrix.CELLS
]


@pytest.fixture(scope="module")
def cell_files(built_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    test_dir = built_tree / "tests" / "multi_bluetooth"
    return matrix.write_cells(test_dir, tmp_path_factory.mktemp("matrix"))


@pytest.mark.skipif(not upstream_available(), reason=NO_TREE_REASON)
@pytest.mark.parametrize(
    ("addresses", "pair", "cell"),
    CASES,
    ids=[
        f"{a}:{'/'.join(p)}:{c.file_stem.removeprefix('ble_gap_bond_matrix_')}"
        for a, p, c in CASES
    ],
)
def test_matrix_cell(
    built_tree: Path,
    cell_files: dict,
    addresses: str,
    pair: tuple[str, str],
    cell: matrix.Cell,
    tmp_path: Path,
) -> None:
    public = addresses == "public"
    key = matrix.cell_key(cell, public)
    trace = trace_dir("matrix", key, tmp_path)
    [result] = run_suite(built_tree, [cell_files[cell]], pair, trace, public_addresses=public)
    assert_as_expected("matrix", "/".join(pair), key, result, trace)
