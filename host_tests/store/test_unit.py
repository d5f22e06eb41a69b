"""Unit tests of the mp_tlvstore core through ctypes (in-memory and POSIX backends)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tlvstore_harness import ERR, LOAD_FLAGS, MAIN, MODE_OK, SIDE, Lib, Store, tag

BTD = [tag("BTD", i) for i in range(16)]
SMER, SMIR = tag("SMER"), tag("SMIR")


def val(i: int, n: int = 60) -> bytes:
    return bytes((i * 37 + k * 11 + 1) & 0xFF for k in range(n))


def fresh(lib: Lib, truncate: bool = True) -> Store:
    s = Store(lib, truncate=truncate)
    rc, res = s.load()
    assert rc == 0, res.flag_names()
    return s


def reload(lib: Lib, truncate: bool = True) -> tuple[Store, object]:
    s = Store(lib, truncate=truncate)
    rc, res = s.load()
    assert rc == 0, res.flag_names()
    return s, res


def test_empty_store_has_no_file(mem: Lib) -> None:
    s = Store(mem)
    rc, res = s.load()
    assert rc == 0
    assert res.flag_names() == {"NO_FILE"}
    assert s.items() == {}
    assert s.get(SMER) is None
    assert mem.mem_files() == (None, None)
    assert s.clear() == 0 and mem.mem_files() == (None, None)


def test_not_loaded_is_inval(mem: Lib) -> None:
    s = Store(mem)
    assert s.store(SMER, b"x") == ERR["INVAL"]
    assert s.delete(SMER) == ERR["INVAL"]
    assert s.clear() == ERR["INVAL"]


def test_store_get_replace_delete_reload(mem: Lib) -> None:
    s = fresh(mem)
    assert s.store(SMER, val(1, 16)) == 0
    assert s.store(SMIR, val(2, 16)) == 0
    for i in range(4):
        assert s.store(BTD[i], val(10 + i)) == 0
    assert s.get(SMER) == val(1, 16)
    assert s.store(BTD[1], val(99)) == 0
    assert s.delete(BTD[2]) == 0
    assert s.delete(BTD[2]) == 0  # absent: no-op
    expect = {
        SMER: val(1, 16),
        SMIR: val(2, 16),
        BTD[0]: val(10),
        BTD[1]: val(99),
        BTD[3]: val(13),
    }
    assert s.items() == expect
    s2, res = reload(mem)
    assert s2.items() == expect
    assert res.flags == 0 and res.entries == 5


def test_get_is_served_from_ram(mem: Lib) -> None:
    s = fresh(mem)
    s.store(SMER, val(1, 16))
    reads = mem.stats.reads
    opens = mem.stats.opens
    for _ in range(10):
        assert s.get(SMER) == val(1, 16)
    assert (mem.stats.reads, mem.stats.opens) == (reads, opens)


def test_get_truncates_into_small_buffer(mem: Lib) -> None:
    import ctypes

    s = fresh(mem)
    s.store(SMER, val(1, 16))
    buf = ctypes.create_string_buffer(4)
    assert mem.dll.mp_tlvstore_get(s.buf, SMER, buf, 4) == 16
    assert buf.raw == val(1, 16)[:4]


def test_unchanged_value_costs_no_io(mem: Lib) -> None:
    s = fresh(mem)
    s.store(BTD[0], val(1))
    w = mem.stats.bytes_written
    assert s.store(BTD[0], val(1)) == 0
    assert mem.stats.bytes_written == w


def test_zero_length_value(mem: Lib) -> None:
    s = fresh(mem)
    assert s.store(SMER, b"") == 0
    assert s.get(SMER) == b""
    s2, _ = reload(mem)
    assert s2.items() == {SMER: b""}


def test_value_size_limit(mem: Lib) -> None:
    s = fresh(mem)
    assert s.store(SMER, bytes(255)) == 0
    assert s.store(SMIR, bytes(256)) == ERR["TOO_BIG"]
    assert s.get(SMIR) is None


def test_capacity_errors_do_not_corrupt(small_lib: Lib) -> None:
    lib = small_lib
    lib.mem_reset()
    s = fresh(lib)
    for i in range(4):
        assert s.store(BTD[i], val(i, 20)) == 0
    before = lib.mem_files()
    assert s.store(BTD[4], val(4, 20)) == ERR["FULL"]  # entry table
    assert s.store(BTD[0], val(0, 100)) == ERR["FULL"]  # cache bytes (128)
    assert lib.mem_files() == before
    assert s.store(BTD[0], val(7, 20)) == 0  # replacing in place still works
    s2, _ = reload(lib)
    assert s2.items() == {BTD[0]: val(7, 20), **{BTD[i]: val(i, 20) for i in range(1, 4)}}


def test_load_overflow_protects_file(lib: Lib, small_lib: Lib) -> None:
    lib.mem_reset()
    s = fresh(lib)
    for i in range(6):
        s.store(BTD[i], val(i, 20))
    files = lib.mem_files()
    small_lib.mem_reset()
    small_lib.mem_restore(files)
    t = Store(small_lib)
    rc, res = t.load()
    assert rc == ERR["FULL"]
    assert "OVERFLOW" in res.flag_names() and res.overflow == 2
    assert len(t.items()) == 4
    # Protected: RAM works, the file (which holds more than RAM) is never touched.
    assert ERR_APPLIED(t.store(BTD[0], b"x"))
    assert t.get(BTD[0]) == b"x"
    assert small_lib.mem_files() == files


def ERR_APPLIED(rc: int) -> bool:  # noqa: N802 - mirrors the C macro
    return rc <= ERR["IO"]


def test_iterator_and_count(mem: Lib) -> None:
    s = fresh(mem)
    for i in range(16):
        s.store(BTD[i], val(i))
    assert s.count() == 16
    assert [t for t, _ in s.iter()] == BTD
    s.delete(BTD[5])
    assert [t for t, _ in s.iter()] == BTD[:5] + BTD[6:]


def test_clear(mem: Lib) -> None:
    s = fresh(mem)
    for i in range(5):
        s.store(BTD[i], val(i))
    assert s.clear() == 0
    assert s.items() == {}
    main, side = mem.mem_files()
    assert side is None and main is not None and len(main) == 24
    s2, _ = reload(mem)
    assert s2.items() == {}
    assert s2.store(SMER, val(3, 16)) == 0


def all_bytes(lib: Lib) -> bytes:
    return b"".join(f or b"" for f in lib.mem_files())


def test_deleted_and_replaced_values_are_scrubbed(mem: Lib) -> None:
    s = fresh(mem)
    for i in range(16):
        s.store(BTD[i], val(i))
    s.store(BTD[3], val(100))
    s.delete(BTD[4])
    blob = all_bytes(mem)
    assert val(3) not in blob and val(4) not in blob
    assert val(100) in blob
    # Replace-heavy workload: ping-pong between two slots, no growth.
    size = len(mem.mem_get(MAIN) or b"")
    for k in range(50):
        s.store(BTD[7], val(200 + k))
        blob = all_bytes(mem)
        assert val(200 + k) in blob
        if k:
            assert val(200 + k - 1) not in blob
    assert len(mem.mem_get(MAIN) or b"") <= size + 84


def test_file_size_bound_and_compaction(mem: Lib) -> None:
    s = fresh(mem)
    for i in range(16):
        s.store(BTD[i], val(i))
    for i in range(15):
        s.delete(BTD[i])
        main = mem.mem_get(MAIN) or b""
        live = sum(8 + 16 + len(v) for v in s.items().values())
        assert len(main) <= 24 + 2 * live, i
    assert mem.mem_get(SIDE) is None
    s2, _ = reload(mem)
    assert s2.items() == {BTD[15]: val(15)}


def test_mixed_sizes_stay_bounded(mem: Lib) -> None:
    s = fresh(mem)
    for k in range(300):
        t = tag("BTC", k % 20)
        n = 8 if k % 3 else 60
        s.store(t, val(k, n))
        if k % 7 == 0:
            s.delete(tag("BTC", (k * 3) % 20))
        main = mem.mem_get(MAIN) or b""
        live = sum(8 + 16 + len(v) for v in s.items().values())
        assert len(main) <= 24 + 2 * live
    s2, _ = reload(mem)
    assert s2.items() == s.items()


@pytest.mark.parametrize("truncate", [True, False])
def test_posix_backend(lib: Lib, tmp_path: Path, truncate: bool) -> None:
    base = tmp_path / "bonds.db"
    assert lib.dll.shim_posix_set_base(str(base).encode()) == 0
    s = Store(lib, backend="posix", truncate=truncate)
    rc, res = s.load()
    assert rc == 0 and res.flag_names() == {"NO_FILE"}
    for i in range(16):
        assert s.store(BTD[i], val(i)) == 0
    s.store(SMER, val(50, 16))
    s.delete(BTD[0])
    expect = s.items()
    t = Store(lib, backend="posix", truncate=truncate)
    rc, res = t.load()
    assert rc == 0 and res.flags == 0
    assert t.items() == expect
    # Torn tail on a real file.
    with open(base, "ab") as f:
        f.write(b"\xa5\x00\x4c\x00garbage")
    u = Store(lib, backend="posix", truncate=truncate)
    rc, res = u.load()
    assert rc == 0 and "TORN_TAIL" in res.flag_names()
    assert u.items() == expect
    assert not (tmp_path / "bonds.db.new").exists()
    v = Store(lib, backend="posix", truncate=truncate)
    rc, res = v.load()
    assert rc == 0 and res.flags == 0 and v.items() == expect


def test_mode_ok(mem: Lib) -> None:
    s = fresh(mem)
    assert s.mode == MODE_OK
    assert LOAD_FLAGS["NO_FILE"] == 1
