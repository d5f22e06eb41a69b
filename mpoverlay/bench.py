"""Benchmarks (numbers, not pass/fail): ``python -m mpoverlay.bench [--micropy-dir DIR]``.

1. Flash wear per bond event: block erases, programs and bytes programmed on a
   littlefs and a FAT image (4 KB blocks, as rp2) through the real unix firmware
   (``mpoverlay.wear``), the metric that wears flash out.
2. What the store core writes per event (bytes, syncs) on an atomic (littlefs) and
   an in-place (FAT, POSIX) filesystem, and the file size (the host core).
3. Instructions ``ble.active(1)`` costs with 0 and with 16 bonds in the store,
   counted by callgrind on the unix BTstack firmware (repeatable, unlike time).
4. Reconnect-to-encrypted time after the peripheral restarted vs a warm
   reconnect, over the virtual radio (tests/multi_bluetooth/perf_gap_bond_reconnect.py).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import REPO_ROOT, wear
from .build import build_unix, unix_binary
from .multitest import run_suite
from .radio import RadioProcess
from .tree import prepared_tree

HARNESS_DIRS = [REPO_ROOT / "host_tests" / "bondstore", REPO_ROOT / "tools"]
RECONNECT_TEST = "perf_gap_bond_reconnect.py"
CALLGRIND_RUNS = 3

ACTIVATE = (
    "import bluetooth\n"
    "b = bluetooth.BLE()\n"
    "b.config(bond_file={path!r})\n"
    "b.active(1)\n"
    "b.active(0)\n"
)


@contextmanager
def harness() -> Iterator[Any]:
    """The host core's ctypes harness (host_tests/bondstore/bondstore_harness.py)."""
    sys.path[:0] = [str(d) for d in HARNESS_DIRS]
    try:
        import bondstore_harness  # noqa: PLC0415

        yield bondstore_harness
    finally:
        for d in HARNESS_DIRS:
            sys.path.remove(str(d))


def device_db_entry(i: int) -> bytes:
    """A le_device_db_entry_t (60 bytes): seq_nr, addr_type, addr, irk, ltk, ediv,
    rand, key_size, authenticated, authorized, secure_connection."""
    return (
        (i + 1).to_bytes(4, "little")
        + (1).to_bytes(4, "little")
        + bytes([0xC1, 0, 0, 0, 0, i])
        + bytes([i] * 16)
        + bytes([0x80 + i] * 16)
        + (i).to_bytes(2, "little")
        + bytes([i] * 8)
        + bytes([16, 0, 0, 0])
    )


def core_write_cost() -> str:
    """Bytes and syncs per event of a 16-bond workload, on both kinds of filesystem."""
    rows = []
    with harness() as h:
        lib = h.Lib(h.build())
        for atomic in (True, False):
            lib.reset(atomic=atomic)
            store = h.Store(lib)
            store.load()

            def event(
                name: str,
                *changes: tuple[int, bytes | None],
                store: Any = store,
                atomic: bool = atomic,
            ) -> None:
                before = (lib.stats.bytes_written, lib.stats.syncs)
                for t, value in changes:
                    store.set(t, value)
                assert store.commit() == 0
                size = len(lib.file(h.MAIN) or b"")
                written = lib.stats.bytes_written - before[0]
                rows.append((atomic, name, written, lib.stats.syncs - before[1], size))

            event(
                "first boot (ER, IR, address)",
                (h.tag("SMER"), bytes(16)),
                (h.tag("SMIR"), bytes(16)),
                (h.tag("MPSA"), bytes(6)),
            )
            for i in range(16):
                event("new bond" if i else "first bond", (h.tag("BTD", i), device_db_entry(i)))
            event("CCCD change", (h.tag("BTC", 0), bytes(8)))
            event("re-pair", (h.tag("BTD", 3), device_db_entry(33)))
            event("re-encryption (nothing changes)")
            event("delete", (h.tag("BTD", 5), None))
            event("eviction of the 17th", (h.tag("BTD", 0), device_db_entry(40)))
    out = [f"{'filesystem':<10} {'event':<32} {'bytes':>7} {'syncs':>6} {'file size':>10}"]
    seen = set()
    for atomic, name, written, syncs, size in rows:
        if (atomic, name) in seen:
            continue  # one "new bond" row: they are alike
        seen.add((atomic, name))
        kind = "atomic" if atomic else "in place"
        out.append(f"{kind:<10} {name:<32} {written:>7} {syncs:>6} {size:>10}")
    return "\n".join(out)


def write_bond_file(path: Path, bonds: int) -> None:
    """A bond file with ER/IR, an identity address and ``bonds`` device-DB entries."""
    with harness() as h:
        lib = h.Lib(h.build())
        lib.reset(atomic=False)  # the unix firmware's VfsPosix is in place
        store = h.Store(lib)
        store.load()
        store.set(h.tag("SMER"), bytes(range(1, 17)))
        store.set(h.tag("SMIR"), bytes(range(17, 33)))
        store.set(h.tag("MPSA"), bytes.fromhex("C0C0FFEE0001"))
        for i in range(bonds):
            assert store.set(h.tag("BTD", i), device_db_entry(i)) == 0
        assert store.commit() == 0
        path.write_bytes(lib.file(h.MAIN))


def _callgrind(binary: Path, bond_file: Path, pty: str, toggle: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        cmd += [f"--toggle-collect={fn}" for fn in toggle]
        cmd += [str(binary), "-c", ACTIVATE.format(path=str(bond_file))]
        env = {**os.environ, "MICROPYBTUART": pty, "HOME": tmp}
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
        text = out.read_text()
    m = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
    if not m:
        raise RuntimeError("no callgrind summary")
    return int(m.group(1))


TIMED_ACTIVATE = (
    "import bluetooth, time\n"
    "b = bluetooth.BLE()\n"
    "b.config(bond_file={path!r})\n"
    "t = []\n"
    "for i in range({runs}):\n"
    "    t0 = time.ticks_us()\n"
    "    b.active(1)\n"
    "    t.append(time.ticks_diff(time.ticks_us(), t0))\n"
    "    b.active(0)\n"
    "print(sorted(t)[len(t) // 2])\n"
)


def _timed_activate(binary: Path, bond_file: Path, pty: str, runs: int = 9) -> int:
    """Median wall time of active(1), in microseconds (includes controller latency)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MICROPYBTUART": pty, "HOME": tmp}
        code = TIMED_ACTIVATE.format(path=str(bond_file), runs=runs)
        out = subprocess.run(
            [str(binary), "-c", code], env=env, check=True, capture_output=True, timeout=120
        )
    return int(out.stdout.split()[-1])


def activate_cost() -> list[tuple[str, int, int]]:
    """(what, instructions with 0 bonds, with 16 bonds)."""
    if not shutil.which("valgrind"):
        raise RuntimeError("valgrind is not installed")
    binary = unix_binary("btstack")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for n in (0, 16):
            files[n] = Path(tmp) / f"bonds{n}"
            write_bond_file(files[n], n)
        with RadioProcess(count=1) as radio:
            # The store's own work at active(1): deterministic.
            store_fns = ["mp_bluetooth_btstack_bond_store_init", "le_device_db_tlv_configure"]
            store = [_callgrind(binary, files[n], radio.ptys[0], store_fns) for n in (0, 16)]
            rows.append(("bond store load + device DB scan", store[0], store[1]))
            # The whole of active(1) waits for the controller, so it varies a
            # little from run to run: take the median.
            whole = [
                statistics.median(
                    _callgrind(binary, files[n], radio.ptys[0], ["mp_bluetooth_init"])
                    for _ in range(CALLGRIND_RUNS)
                )
                for n in (0, 16)
            ]
            rows.append(("ble.active(1) (mp_bluetooth_init)", int(whole[0]), int(whole[1])))
            wall = [_timed_activate(binary, files[n], radio.ptys[0]) for n in (0, 16)]
            rows.append(("ble.active(1) wall time, median us", wall[0], wall[1]))
    return rows


def reconnect_times(tree: Path) -> list[str]:
    [result] = run_suite(
        tree, [tree / "tests" / "multi_bluetooth" / RECONNECT_TEST], ("btstack", "btstack")
    )
    metrics = re.findall(r"^.*?: (reconnect .*)$", result.output, re.M)
    if result.outcome != "pass" or not metrics:
        raise RuntimeError(f"{RECONNECT_TEST} {result.outcome}:\n{result.output}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mpoverlay.bench", description=__doc__)
    parser.add_argument("--micropy-dir", default=os.environ.get("MICROPY_DIR") or None)
    args = parser.parse_args(argv)

    tree = prepared_tree(args.micropy_dir, allow_fetch=False)
    build_unix(tree, "btstack")
    print("== 1. flash wear per bond event, through the firmware ==")
    print(wear.format_table({fs: wear.measure(fs) for fs in ("lfs2", "fat")}))
    print()
    print("== 2. what the store core writes per event (host core) ==")
    print(core_write_cost())
    print()
    print("== 3. ble.active(1) cost: callgrind instructions, and wall time ==")
    print(f"{'what':<36} {'0 bonds':>12} {'16 bonds':>12} {'ratio':>7}")
    for what, zero, sixteen in activate_cost():
        ratio = sixteen / zero if zero else float("nan")
        print(f"{what:<36} {zero:>12,} {sixteen:>12,} {ratio:>7.3f}")
    print()
    print("== 4. reconnect to encrypted, over the virtual radio ==")
    for line in reconnect_times(tree):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
