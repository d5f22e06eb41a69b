"""A power cut at every fault point of every commit: the file then holds the state
before or after that commit, and the next commit leaves no dead value in the file.

Fault points (shim_mem.c): every byte written, and each create, sync and remove.
Filesystems: in place (FAT, POSIX) with a torn write leaving the old bytes, garbage or
zeros, with and without losing unsynced writes; and atomic (littlefs).  Every value
written is unique, so "no dead value in the file" is a plain substring check.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from bondstore_harness import CUT_GARBAGE, CUT_UNCHANGED, CUT_ZEROS, MAIN, Lib, Store, tag

Event = list[tuple[int, bytes | None]]
MODES = {
    "in_place-unchanged": (False, CUT_UNCHANGED, 0),
    "in_place-garbage": (False, CUT_GARBAGE, 0),
    "in_place-zeros": (False, CUT_ZEROS, 0),
    "in_place-lose_unsynced": (False, CUT_GARBAGE, 1),
    "atomic": (True, CUT_UNCHANGED, 0),
}
CASES: dict[str, int] = {}


def values() -> Iterator[bytes]:
    for i in itertools.count(1):
        yield i.to_bytes(4, "big") * 4  # 16 unique bytes


def workload(bonds: int) -> list[tuple[str, Event]]:
    """What BTstack's glue commits: first boot, bonds, CCCDs, a re-pair, an unpair, an eviction."""
    v = values()

    def btd(i: int) -> tuple[int, bytes]:
        return tag("BTD", i), next(v) * 3 + next(v)[:12]  # 60 bytes

    events: list[tuple[str, Event]] = [
        (
            "first boot",
            [(tag("SMER"), next(v)), (tag("SMIR"), next(v)), (tag("MPSA"), next(v)[:6])],
        )
    ]
    for i in range(bonds):
        events.append((f"bond {i}", [btd(i)]))
    events.append(("cccd", [(tag("BTC", 0), next(v)[:8])]))
    events.append(("re-pair", [btd(1)]))
    events.append(("unpair", [(tag("BTD", 2), None), (tag("BTC", 0), None)]))
    events.append(("eviction", [(tag("BTD", 0), None), btd(0)]))
    return events


def apply(model: dict[int, bytes], event: Event) -> dict[int, bytes]:
    out = dict(model)
    for t, value in event:
        if value is None:
            out.pop(t, None)
        else:
            out[t] = value
    return out


def run_event(lib: Lib, event: Event) -> int:
    s = Store(lib)
    assert s.load() == 0
    for t, value in event:
        assert s.set(t, value) == 0
    return s.commit()


def recover(lib: Lib) -> tuple[dict[int, bytes], bytes]:
    """Boot after the cut: load, commit the repairs; the state and the file."""
    lib.power_on()
    s = Store(lib)
    assert s.load() == 0, s.found
    state = s.items()
    assert s.commit() == 0
    return state, lib.file(MAIN) or b""


def dead_values(all_written: set[bytes], state: dict[int, bytes]) -> set[bytes]:
    return all_written - set(state.values())


def sweep(lib: Lib, name: str, events: list[tuple[str, Event]], stride: int) -> None:
    atomic, cut_mode, lose = MODES[name]
    lib.reset(atomic=atomic)
    model: dict[int, bytes] = {}
    written: set[bytes] = set()
    for label, event in events:
        before_files = [lib.file(i) for i in range(3)]
        after = apply(model, event)
        written |= {value for _, value in event if value}
        start = lib.stats.points
        assert run_event(lib, event) == 0
        points = int(lib.stats.points - start)
        after_files = [lib.file(i) for i in range(3)]
        cuts = sorted(set(range(0, points, stride)) | {points - 1})
        for k in cuts:
            for i, data in enumerate(before_files):
                lib.set_file(i, data)
            lib.fault.cut_at = lib.stats.points + k
            lib.fault.cut_mode = cut_mode
            lib.fault.cut_lose_unsynced = lose
            run_event(lib, event)  # may succeed: a cut while taking the reserve
            assert lib.dead, f"{label}: cut at {k} did not cut"
            state, data = recover(lib)
            assert state in (model, after), f"{name} {label}: cut at {k}/{points}"
            leaked = [v.hex() for v in dead_values(written, state) if v in data]
            assert not leaked, f"{name} {label}: cut at {k}: dead values {leaked} in the file"
        CASES[name] = CASES.get(name, 0) + len(cuts)
        for i, data in enumerate(after_files):
            lib.set_file(i, data)
        model = after


@pytest.mark.parametrize("name", list(MODES))
def test_every_cut_of_a_small_workload(lib: Lib, name: str) -> None:
    sweep(lib, name, workload(bonds=3), stride=1)


@pytest.mark.parametrize("name", list(MODES))
def test_cuts_through_sixteen_bonds(lib: Lib, name: str) -> None:
    # Every 7th point plus the last one: each of the image's bytes and of the
    # zeroing is hit in some commit, the header every time its position comes up.
    sweep(lib, name, workload(bonds=16), stride=7)


def test_a_second_cut_during_recovery(lib: Lib) -> None:
    lib.reset(atomic=False)
    events = workload(bonds=2)
    model: dict[int, bytes] = {}
    for _, event in events[:-1]:
        run_event(lib, event)
        model = apply(model, event)
    before = [lib.file(i) for i in range(3)]
    after = apply(model, events[-1][1])
    for k in range(0, 3000, 13):
        for i, data in enumerate(before):
            lib.set_file(i, data)
        lib.fault.cut_at = lib.stats.points + k
        lib.fault.cut_mode = CUT_GARBAGE
        if run_event(lib, events[-1][1]) == 0:
            lib.fault.cut_at = -1
            continue
        for j in (5, 50, 500):
            lib.power_on()
            lib.fault.cut_at = lib.stats.points + j
            lib.fault.cut_mode = CUT_ZEROS
            s = Store(lib)
            s.load()
            s.commit()
        state, _ = recover(lib)
        assert state in (model, after), f"cut at {k}, then during recovery"


def test_print_case_counts() -> None:
    # Runs last in this module: how many cuts were checked (for the README).
    print("\npower cuts checked per filesystem:", CASES)
