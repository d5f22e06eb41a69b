"""tools/bondfile.py against files written by the C core (cross-check with the C iterator)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import bondfile
import pytest
from test_faults import SCRIPT, run_script_states
from tlvstore_harness import CUT_GARBAGE, ROOT, Lib, Store, apply, tag

TOOL = ROOT / "tools" / "bondfile.py"


def device_entry(index: int, addr: bytes, addr_type: int = 1, signed: bool = False) -> bytes:
    v = struct.pack(
        "<Ii6s16s16sH8sBBBB",
        7 + index,
        addr_type,
        addr,
        bytes(range(16)),
        bytes(range(100, 116)),
        0xBEEF,
        b"RANDRAND",
        16,
        1,
        0,
        1,
    )
    assert len(v) == 60
    if signed:
        v += bytes(range(200, 216)) + struct.pack("<I", 5) + bytes(16) + struct.pack("<I", 0)
    return v


def c_items(lib: Lib) -> dict[int, bytes]:
    s = Store(lib)
    assert s.load()[0] == 0
    return s.items()


def entries_of(data: bytes) -> dict[int, bytes]:
    return {t: e.value for t, e in bondfile.parse(data).entries.items()}


def test_script_states_agree_with_c_iterator(lib: Lib) -> None:
    for files, model in run_script_states(lib, True):
        if files[0] is None:
            continue
        p = bondfile.parse(files[0])
        assert p.issues == [] and p.header_ok
        assert entries_of(files[0]) == model
        lib.mem_reset()
        lib.mem_restore(files)
        assert c_items(lib) == model


def test_torn_files_agree_with_c_loader(lib: Lib) -> None:
    states = run_script_states(lib, True)
    checked = 0
    for step in range(0, len(SCRIPT), 3):
        files, _ = states[step]
        for k in range(0, 400, 7):
            lib.mem_reset()
            lib.mem_restore(files)
            s = Store(lib)
            assert s.load()[0] == 0
            lib.fault.cut_at = lib.stats.points + k
            lib.fault.cut_mode = CUT_GARBAGE
            apply(s, SCRIPT[step])
            lib.dll.shim_mem_power_on()
            main, side = lib.mem_files()
            if main is None or side is not None:
                continue
            try:
                mine = entries_of(main)
            except bondfile.NotAStoreError:
                mine = {}
            assert mine == c_items(lib), (step, k)
            checked += 1
    assert checked > 100


def test_device_db_decoding_and_key_hiding(lib: Lib, tmp_path: Path) -> None:
    base = tmp_path / "bonds.db"
    lib.dll.shim_posix_set_base(str(base).encode())
    s = Store(lib, backend="posix")
    s.load()
    s.store(tag("BTD", 3), device_entry(3, bytes.fromhex("C0FFEE123456")))
    s.store(tag("BTD", 4), device_entry(4, bytes.fromhex("0A0B0C0D0E0F"), 0, signed=True))
    s.store(tag("SMER"), bytes(range(0x30, 0x40)))
    s.store(tag("BTC", 2), struct.pack("<IHBB", 9, 0x002A, 1, 3))
    s.store(tag("ZZZZ"), b"secret-ish")
    s.store(tag("MPSA"), bytes.fromhex("F4493C702960"))
    out = subprocess.run([sys.executable, str(TOOL), str(base)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "'BTD'+3" in text and "le_device_db entry 3" in text
    assert "C0:FF:EE:12:34:56" in text and "random" in text
    assert "'SMER'" in text and "ER (encryption root)" in text
    assert "CCCD entry 2" in text and "0x002a" in text
    # The device's own static address is its public identity, not a secret.
    assert "random static address" in text and "F4:49:3C:70:29:60" in text
    secrets = [
        bytes(range(16)).hex(),
        bytes(range(100, 116)).hex(),
        bytes(range(0x30, 0x40)).hex(),
    ]
    assert not any(x in text for x in secrets)
    assert b"secret-ish".hex() not in text
    out = subprocess.run(
        [sys.executable, str(TOOL), str(base), "--json", "--show-keys"],
        capture_output=True,
        text=True,
    )
    r = json.loads(out.stdout)
    by_tag = {e["tag"]: e for e in r["entries"]}
    d3 = by_tag["'BTD'+3"]["decoded"]
    assert d3["address"] == "C0:FF:EE:12:34:56" and d3["key_size"] == 16
    assert d3["irk"] == bytes(range(16)).hex() and d3["ltk_present"]
    d4 = by_tag["'BTD'+4"]["decoded"]
    assert d4["signed_write"] and d4["addr_type"] == "public" and d4["remote_csrk_present"]
    assert by_tag["'SMER'"]["value_hex"] == bytes(range(0x30, 0x40)).hex()
    assert by_tag["'BTC'+2"]["decoded"]["device_index"] == 3
    # Iterator agrees with the tool.
    assert {int(e["tag_hex"], 16): bytes.fromhex(e["value_hex"]) for e in r["entries"]} == dict(
        s.items()
    )


@pytest.mark.parametrize(
    "content", [b"", b"hello world, not a store", b"MPTLVDB", bytes(100)], ids=repr
)
def test_not_a_store_file(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(content)
    out = subprocess.run([sys.executable, str(TOOL), str(f)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "bondfile:" in out.stderr


def test_missing_file(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(TOOL), str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert out.returncode == 2


def test_reports_torn_tail_and_side_file(lib: Lib, tmp_path: Path) -> None:
    lib.mem_reset()
    s = Store(lib)
    s.load()
    for i in range(4):
        s.store(tag("BTD", i), device_entry(i, bytes(6)))
    main = lib.mem_get(0)
    assert main is not None
    f = tmp_path / "torn.db"
    f.write_bytes(main + main[24:60])
    out = subprocess.run(
        [sys.executable, str(TOOL), str(f), "--strict"], capture_output=True, text=True
    )
    assert out.returncode == 1 and "torn tail" in out.stdout
    # Interrupted compaction: the side file is readable too.
    lib.fault.cut_at = lib.stats.points + 400  # side file synced, main half rewritten
    s.compact()
    lib.dll.shim_mem_power_on()
    side = lib.mem_get(1)
    assert side is not None
    g = tmp_path / "side.db.new"
    g.write_bytes(side)
    out = subprocess.run([sys.executable, str(TOOL), str(g)], capture_output=True, text=True)
    assert out.returncode == 0 and "side file" in out.stdout
