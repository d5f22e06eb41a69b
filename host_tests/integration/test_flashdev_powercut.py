"""Power cuts at every flash program/erase of the bond store's life (flashdev rig).

See flashdev_sweep.py for the phases and what is checked after each cut; it
runs for the BTstack and the NimBLE firmware.
littlefs (rp2's filesystem) must recover from every cut: no half-bond, no
bond stored before the phase lost, a deleted bond stays deleted, BLE up with
no traceback, a fresh peer pairs.  FAT on a raw NOR flash rewrites a whole
4 KB sector (erase, then program) for every change, so a cut there can wipe
whatever else the sector held: losing bonds is not promised against (it is
counted and printed); everything else is, as for littlefs.

``FLASHDEV_JOBS`` (default 2) cases run at a time; ``FLASHDEV_CUT_KEEP``
(default ``half,none``) chooses how much of the cut operation lands.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flashdev_sweep import CaseResult, format_summary, prepare, summarize, sweep
from integration_support import FLASHDEV_REPORTS, NO_TREE_REASON, upstream_available

pytestmark = pytest.mark.skipif(not upstream_available(), reason=NO_TREE_REASON)


STACKS = ["btstack", "nimble"]


def _run(tmp_path: Path, fs: str, stack: str) -> list[CaseResult]:
    phases = prepare(tmp_path, fs, stack)
    results = sweep(phases, tmp_path / "cases")
    report = format_summary(fs, summarize(phases, results), results, stack)
    FLASHDEV_REPORTS.append(report)
    print(report)
    assert all(phase.ops > 0 for phase in phases), [(p.name, p.ops) for p in phases]
    missed = [(r.phase, r.n, r.keep) for r in results if not r.cut]
    assert not missed, f"cut points the replay did not reach (not deterministic?): {missed}"
    return results


@pytest.mark.parametrize("stack", STACKS)
def test_power_cut_sweep_littlefs(built_tree: Path, tmp_path: Path, stack: str) -> None:
    results = _run(tmp_path, "lfs2", stack)
    failed = [r for r in results if not r.recovered]
    assert not failed, f"{len(failed)}/{len(results)} cut points did not recover (see report)"


@pytest.mark.parametrize("stack", STACKS)
def test_power_cut_sweep_fat(built_tree: Path, tmp_path: Path, stack: str) -> None:
    results = _run(tmp_path, "fat", stack)
    failed = [r for r in results if r.problems or r.half_bonds]
    assert not failed, f"{len(failed)}/{len(results)} cut points broke a FAT promise (see report)"
