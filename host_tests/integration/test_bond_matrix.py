"""The bonding matrix (mpoverlay.matrix) over the virtual radio.

Every stack pair x legacy/SC x restart side (none, peripheral, central), with
public and with random static addresses: each cell must pass, except those
whose failure mpoverlay.matrix names as an upstream limitation (which must
still fail, so the table stays true).  A passing cell must also show, in the
radio's HCI trace, one SMP Pairing Request on the first connection and none
on the reconnection.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_support import NO_TREE_REASON, upstream_available
from vradio.btsnoop import connections

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
    trace = tmp_path / "trace"
    [result] = run_suite(built_tree, [cell_files[cell]], pair, trace, public_addresses=public)
    expected = matrix.expected_outcome(pair, cell, public)
    why = matrix.cause(pair, cell, public) or "should pass"
    assert result.outcome == expected, f"expected {expected} ({why})\n{result.output}"
    if expected == "pass":
        # The truth from the air, not only the test's word (no secret
        # written): one pairing on the first connection, none on the
        # reconnection, in the peripheral's (instance0's) HCI trace.
        requests = [c.pairing_requests for c in connections(trace / "hci0.btsnoop")]
        assert requests == [1, 0], f"SMP Pairing Requests per connection: {requests}"
