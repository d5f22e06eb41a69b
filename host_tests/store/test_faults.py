"""Power-loss and I/O-error injection against a scripted bond workload.

For every operation of SCRIPT (16 bonds stored, replaced, resized, deleted, compaction
triggered, cleared) power is cut at EVERY fault point of the operation: every byte of
every write, every sync, truncation, file creation and removal (see shim_mem.c).  The
interrupted write's remaining bytes are left unchanged, replaced by garbage or by zeros,
and in a fourth mode all writes not yet covered by a sync are additionally lost.  After
each cut the store is reloaded from the "disk" and must equal the state before or after
the operation with every other entry intact; no value that is not live may remain in the
files, a second load must find nothing to repair, and the store must keep working.

A sample of the recoveries is itself interrupted at every fault point (nested cuts).
Sync failures, ENOSPC, read-only and read errors are covered below as well.
The total number of cases is printed by test_report_fault_case_count.
"""

from __future__ import annotations

import pytest
from tlvstore_harness import (
    CUT_GARBAGE,
    CUT_UNCHANGED,
    CUT_ZEROS,
    ERR,
    MODE_DEGRADED,
    MODE_OK,
    MODE_PROTECTED,
    Lib,
    Store,
    apply,
    model_apply,
    tag,
)

BTD = [tag("BTD", i) for i in range(16)]
BTC = [tag("BTC", i) for i in range(20)]
SMER, SMIR = tag("SMER"), tag("SMIR")


def uval(n: int, length: int) -> bytes:
    """Distinct, recognisable value for script step n (no long runs shared between n)."""
    head = bytes([0xC0 | (n >> 8 & 0x0F), n & 0xFF])
    body = bytes(((n * 131 + k * 29 + 7) ^ (k >> 3)) & 0xFF for k in range(max(length - 2, 0)))
    return (head + body)[:length]


def build_script() -> list[tuple]:
    ops: list[tuple] = []

    def st(t: int, length: int) -> None:
        ops.append(("store", t, uval(len(ops), length)))

    st(SMER, 16)
    st(SMIR, 16)
    for i in range(16):
        st(BTD[i], 60)  # le_device_db_add
    for i in (0, 3, 3, 7):
        st(BTD[i], 60)  # encryption_set / re-pair: same-size replace
    for i in range(3):
        st(BTC[i], 8)  # CCCD entries
    st(BTC[1], 8)
    st(BTD[5], 100)  # grows (ENABLE_LE_SIGNED_WRITE-sized entry): new slot
    st(BTC[2], 60)  # reuses a free slot of another size
    for i in (0, 1, 2, 4, 6, 8, 9, 10, 11, 12):
        ops.append(("delete", BTD[i]))  # sparse file -> compaction
    ops.append(("delete", BTC[0]))
    st(BTD[13], 60)
    ops.append(("clear",))
    st(SMER, 16)
    st(BTD[0], 60)
    st(BTD[0], 60)
    ops.append(("delete", BTD[0]))
    return ops


SCRIPT = build_script()
ALL_VALUES = [op[2] for op in SCRIPT if op[0] == "store"]
CASES = {"power_cut": 0, "nested_cut": 0, "sync_fail": 0, "enospc": 0, "other": 0}


def leaked_values(lib: Lib, live: dict[int, bytes]) -> list[bytes]:
    blob = b"".join(f or b"" for f in lib.mem_files())
    live_values = set(live.values())
    return [v for v in ALL_VALUES if v not in live_values and len(v) >= 8 and v in blob]


def check_recovered(lib: Lib, before: dict, after: dict, truncate: bool) -> dict[int, bytes]:
    s = Store(lib, truncate=truncate)
    rc, res = s.load()
    assert rc == 0, (rc, res.flag_names())
    state = s.items()
    assert state == before or state == after, res.flag_names()
    assert not leaked_values(lib, state)
    assert lib.mem_get(1) is None  # side file never survives a load
    # Recovery converged: a second load finds a clean file with the same data.
    s2 = Store(lib, truncate=truncate)
    rc, res2 = s2.load()
    assert rc == 0 and res2.flag_names() <= {"NO_FILE"}, res2.flag_names()
    assert s2.items() == state
    return state


def disk_state(lib: Lib) -> dict[int, bytes]:
    """What a reboot now would load, without disturbing the current files."""
    files = lib.mem_files()
    d = Store(lib)
    assert d.load()[0] == 0
    state = d.items()
    lib.mem_restore(files)
    return state


def prepare(lib: Lib, files: tuple, truncate: bool) -> Store:
    lib.mem_reset()
    lib.mem_restore(files)
    s = Store(lib, truncate=truncate)
    rc, res = s.load()
    assert rc == 0 and res.flags in (0, 1), res.flag_names()
    return s


def run_script_states(lib: Lib, truncate: bool) -> list[tuple[tuple, dict]]:
    """(files, model) before each op, by running the script without faults."""
    lib.mem_reset()
    s = Store(lib, truncate=truncate)
    assert s.load()[0] == 0
    model: dict[int, bytes] = {}
    states = []
    for op in SCRIPT:
        states.append((lib.mem_files(), dict(model)))
        assert apply(s, op) == 0
        model = model_apply(model, op)
        assert s.items() == model
    return states


NESTED_EVERY = 61
MODES = [
    ("unchanged", CUT_UNCHANGED, 0),
    ("garbage", CUT_GARBAGE, 0),
    ("zeros", CUT_ZEROS, 0),
    ("lose_unsynced", CUT_GARBAGE, 1),
]


@pytest.mark.parametrize("truncate", [True, False], ids=["truncate", "notruncate"])
def test_power_cut_every_point(lib: Lib, truncate: bool) -> None:
    states = run_script_states(lib, truncate)
    compacting_ops = 0
    for step, op in enumerate(SCRIPT):
        files, before = states[step]
        after = model_apply(before, op)
        s = prepare(lib, files, truncate)
        p0 = lib.stats.points
        creates0 = lib.stats.creates
        assert apply(s, op) == 0
        total = lib.stats.points - p0
        compacting_ops += lib.stats.creates - creates0 >= 2
        for k in range(total):
            for _name, cut_mode, lose in MODES:
                s = prepare(lib, files, truncate)
                lib.fault.cut_at = lib.stats.points + k
                lib.fault.cut_mode = cut_mode
                lib.fault.cut_lose_unsynced = lose
                rc = apply(s, op)
                assert lib.dll.shim_mem_is_dead(), (step, k)
                assert rc <= ERR["IO"] or rc == 0  # applied in RAM either way
                assert s.items() == after
                lib.dll.shim_mem_power_on()
                if k % NESTED_EVERY == 5 and cut_mode == CUT_GARBAGE:
                    nested_recovery_cuts(lib, before, after, truncate)
                state = check_recovered(lib, before, after, truncate)
                CASES["power_cut"] += 1
                if k % 17 == 0:
                    # The recovered store keeps working.
                    s3 = Store(lib, truncate=truncate)
                    assert s3.load()[0] == 0
                    assert s3.store(tag("BTC", 19), b"afterlife") == 0
                    assert Store(lib, truncate=truncate).load()[0] == 0
                    assert s3.items() == {**state, tag("BTC", 19): b"afterlife"}
    assert compacting_ops >= 3  # compaction on delete, clear, and on growth


def nested_recovery_cuts(lib: Lib, before: dict, after: dict, truncate: bool) -> None:
    """Cut power at every fault point of the recovering load itself."""
    torn = lib.mem_files()
    s = Store(lib, truncate=truncate)
    p0 = lib.stats.points
    assert s.load()[0] == 0
    total = lib.stats.points - p0
    result = s.items()
    for k in range(total):
        lib.mem_reset()
        lib.mem_restore(torn)
        s = Store(lib, truncate=truncate)
        lib.fault.cut_at = lib.stats.points + k
        lib.fault.cut_mode = CUT_GARBAGE
        s.load()
        lib.dll.shim_mem_power_on()
        state = check_recovered(lib, before, after, truncate)
        assert state == result
        CASES["nested_cut"] += 1
    lib.mem_reset()
    lib.mem_restore(torn)


def test_sync_failure_each_sync(lib: Lib) -> None:
    states = run_script_states(lib, True)
    for step, op in enumerate(SCRIPT):
        files, before = states[step]
        after = model_apply(before, op)
        s = prepare(lib, files, True)
        syncs0 = lib.stats.syncs
        apply(s, op)
        nsync = lib.stats.syncs - syncs0
        for i in range(nsync):
            s = prepare(lib, files, True)
            lib.fault.fail_sync_at = lib.stats.syncs + i
            rc = apply(s, op)
            # Either the op itself failed (RAM-only, degraded) or only the
            # compaction behind a durable op failed.
            assert rc in (0, ERR["IO"]), rc
            assert s.items() == after
            if rc:
                assert s.mode == MODE_DEGRADED
            lib.fault.fail_sync_at = -1
            assert disk_state(lib) in (before, after)
            # Same session, disk healthy again: next op heals to RAM state.
            assert s.store(SMIR, b"heal") == 0 and s.mode == MODE_OK
            check = Store(lib)
            assert check.load()[0] == 0
            assert check.items() == {**after, SMIR: b"heal"}
            assert not leaked_values(lib, check.items())
            CASES["sync_fail"] += 1


def test_enospc_every_limit(lib: Lib) -> None:
    states = run_script_states(lib, True)
    for step, op in enumerate(SCRIPT):
        files, before = states[step]
        after = model_apply(before, op)
        used = sum(len(f) for f in files if f is not None)
        for extra in range(0, 200, 3):
            s = prepare(lib, files, True)
            lib.fault.space_limit = used + extra
            rc = apply(s, op)
            assert rc == 0 or rc == ERR["NOSPC"], rc
            assert s.items() == after
            lib.fault.space_limit = 0xFFFFFFFF
            assert disk_state(lib) in (before, after)
            if rc == 0:
                assert not leaked_values(lib, after)
            # Space freed: the session catches up.
            assert s.store(SMIR, b"heal") == 0 and s.mode == MODE_OK
            check = Store(lib)
            assert check.load()[0] == 0 and check.items() == {**after, SMIR: b"heal"}
            CASES["enospc"] += 1


def test_read_only_filesystem(lib: Lib) -> None:
    states = run_script_states(lib, True)
    files, model = states[20]
    s = prepare(lib, files, True)
    lib.fault.rofs = 1
    assert s.store(BTD[0], b"ram only") == ERR["ROFS"]
    assert s.get(BTD[0]) == b"ram only" and s.mode == MODE_DEGRADED
    assert s.delete(BTD[1]) == ERR["ROFS"] and s.get(BTD[1]) is None
    assert lib.mem_files() == files
    # Load on a read-only fs with something to repair: entries served from RAM.
    main = files[0]
    assert main is not None
    lib.mem_set(0, main + b"\xa5\x00torn")
    t = Store(lib)
    rc, res = t.load()
    assert rc == ERR["ROFS"] and "REPAIR_FAILED" in res.flag_names()
    assert t.items() == model and t.mode == MODE_DEGRADED
    lib.fault.rofs = 0
    assert t.store(SMIR, b"x") == 0 and t.mode == MODE_OK
    CASES["other"] += 3


def test_read_error_protects(lib: Lib) -> None:
    states = run_script_states(lib, True)
    files, model = states[20]
    for i in range(40):
        lib.mem_reset()
        lib.mem_restore(files)
        lib.fault.fail_read_at = i
        s = Store(lib)
        rc, res = s.load()
        w = lib.stats.bytes_written
        if rc == 0:
            assert s.items() == model  # failure point beyond the last read
            continue
        assert "READ_ERROR" in res.flag_names() and s.mode == MODE_PROTECTED
        assert s.store(SMER, b"x") == ERR["RAM_ONLY"] and s.get(SMER) == b"x"
        assert s.clear() == ERR["RAM_ONLY"]
        assert lib.stats.bytes_written == w and lib.mem_files() == files
        CASES["other"] += 1


def test_short_reads(lib: Lib) -> None:
    states = run_script_states(lib, False)
    for files, model in states[::5]:
        lib.mem_reset()
        lib.mem_restore(files)
        lib.fault.short_reads = 1
        s = Store(lib)
        assert s.load()[0] == 0 and s.items() == model
        assert s.mode == MODE_OK
        CASES["other"] += 1


def test_report_fault_case_count(capsys: pytest.CaptureFixture[str]) -> None:
    total = sum(CASES.values())
    detail = ", ".join(f"{k}={v}" for k, v in CASES.items())
    with open_report() as f:
        f.write(f"{total}\n{detail}\n")
    with capsys.disabled():
        print(f"\nbond-store fault cases run: {total} ({detail})")
    if CASES["power_cut"]:
        assert CASES["power_cut"] > 10000


def open_report():  # type: ignore[no-untyped-def]
    from tlvstore_harness import BUILD_DIR

    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    return open(BUILD_DIR / "fault_cases.txt", "w")
