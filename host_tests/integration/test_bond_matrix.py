"""The bonding matrix (mpoverlay.matrix) over the virtual radio.

Every stack pair x legacy/SC x restart side (none, peripheral, central), with
public and with random static addresses: each cell must pass, except those
that expected.toml's [matrix] table names (which must still fail as
pinned, so the table stays true).  A passing cell must also show, in the
radio's HCI trace, one SMP Pairing Request on the first connection and none
on the reconnection.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_support import NO_TREE_REASON, upstream_available
from vradio.btsnoop import connections

from mpoverlay import expectations, matrix
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
    trace = tmp_path / "trace"
    [result] = run_suite(built_tree, [cell_files[cell]], pair, trace, public_addresses=public)
    want = matrix.expectation(pair, cell, public)
    differ = expectations.difference(
        "matrix", "/".join(pair), matrix.cell_key(cell, public), result.outcome, result.output
    )
    assert not differ, f"{differ} ({want.cause or 'should pass'})\n{result.output}"
    if result.outcome == "pass":
        # The truth from the air, not only the test's word (no secret
        # written): one pairing on the first connection, none on the
        # reconnection, in the peripheral's (instance0's) HCI trace.
        requests = [c.pairing_requests for c in connections(trace / "hci0.btsnoop")]
        assert requests == [1, 0], f"SMP Pairing Requests per connection: {requests}"
