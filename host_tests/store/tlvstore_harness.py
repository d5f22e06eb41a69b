"""Build the mp_tlvstore core for the host and drive it through ctypes.

The shared library contains extmod/btstack/mp_tlvstore.c plus two shims from this
directory: ``shim_mem.c`` (in-memory filesystem with fault injection) and
``shim_posix.c`` (real files, what the VFS adapter does).  Builds are cached under
``build/host_store/`` keyed by a hash of sources and flags.

Variants: ``plain`` (default), ``small`` (tiny cache, for overflow tests) and
``asan`` (AddressSanitizer + UBSan; only loadable with libasan preloaded, see
test_sanitizers.py).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORE_DIR = ROOT / "extmod" / "btstack"
CORE_SOURCES = [CORE_DIR / "mp_tlvstore.c"]
SHIM_SOURCES = [HERE / "shim_mem.c", HERE / "shim_posix.c"]
HEADERS = [CORE_DIR / "mp_tlvstore.h", HERE / "shim.h"]
BUILD_DIR = Path(os.environ.get("MP_TLVSTORE_BUILD_DIR", ROOT / "build" / "host_store"))

WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes"]
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
VARIANTS: dict[str, list[str]] = {
    "plain": ["-O2", "-g"],
    "small": ["-O2", "-g", "-DMP_TLVSTORE_MAX_ENTRIES=4", "-DMP_TLVSTORE_CACHE_SIZE=128"],
    "asan": ["-O1", "-g", *SAN],
}

MAIN, SIDE = 0, 1
ERR = {
    "OK": 0,
    "INVAL": -1,
    "TOO_BIG": -2,
    "FULL": -3,
    "NOT_FOUND": -4,
    "NOENT": -5,
    "VERSION": -6,
    "IO": -16,
    "NOSPC": -17,
    "ROFS": -18,
    "RAM_ONLY": -19,
}
MODE_OK, MODE_DEGRADED, MODE_PROTECTED = 1, 2, 3
LOAD_FLAGS = {
    "NO_FILE": 0x0001,
    "HEADER_BAD": 0x0002,
    "SIDE_REPLAYED": 0x0004,
    "SIDE_DISCARDED": 0x0008,
    "TORN_TAIL": 0x0010,
    "CORRUPT_MIDDLE": 0x0020,
    "REPAIRED": 0x0040,
    "COMPACTED": 0x0080,
    "REPAIR_FAILED": 0x0100,
    "OVERFLOW": 0x0200,
    "VERSION": 0x0400,
    "READ_ERROR": 0x0800,
}
CUT_UNCHANGED, CUT_GARBAGE, CUT_ZEROS = 0, 1, 2


def tag(name: str, index: int | None = None) -> int:
    """'BTD', 3 -> 0x42544403; 'SMER' -> 0x534d4552 (BTstack's big-endian packing)."""
    raw = name.encode()
    if index is not None:
        raw += bytes([index])
    assert len(raw) == 4
    return int.from_bytes(raw, "big")


def build(variant: str = "plain") -> Path:
    flags = VARIANTS[variant]
    h = hashlib.sha256()
    for p in CORE_SOURCES + SHIM_SOURCES + HEADERS:
        h.update(p.read_bytes())
    h.update(" ".join(WARN + flags).encode())
    out = BUILD_DIR / f"libtlvstore-{variant}-{h.hexdigest()[:16]}.so"
    if out.exists():
        return out
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    cmd = [
        "gcc",
        *WARN,
        *flags,
        "-fPIC",
        "-shared",
        f"-I{CORE_DIR}",
        f"-I{HERE}",
        *map(str, CORE_SOURCES + SHIM_SOURCES),
        "-o",
        str(tmp),
    ]
    subprocess.run(cmd, check=True)
    tmp.replace(out)
    return out


class LoadResult(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint32),
        ("entries", ctypes.c_uint16),
        ("bad_records", ctypes.c_uint16),
        ("superseded", ctypes.c_uint16),
        ("overflow", ctypes.c_uint16),
        ("tail_bytes", ctypes.c_uint32),
        ("junk_bytes", ctypes.c_uint32),
        ("file_size", ctypes.c_uint32),
        ("generation", ctypes.c_uint32),
    ]

    def flag_names(self) -> set[str]:
        return {k for k, v in LOAD_FLAGS.items() if self.flags & v}


class Stats(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_uint64)
        for n in (
            "points",
            "bytes_written",
            "bytes_read",
            "writes",
            "reads",
            "syncs",
            "opens",
            "closes",
            "creates",
            "removes",
            "truncates",
        )
    ]


class Fault(ctypes.Structure):
    _fields_ = [
        ("cut_at", ctypes.c_int64),
        ("cut_mode", ctypes.c_int32),
        ("cut_lose_unsynced", ctypes.c_int32),
        ("fail_sync_at", ctypes.c_int64),
        ("fail_read_at", ctypes.c_int64),
        ("space_limit", ctypes.c_uint32),
        ("rofs", ctypes.c_int32),
        ("short_reads", ctypes.c_int32),
    ]


class Iter(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint16)]


class Lib:
    """Typed view of the shared library."""

    def __init__(self, path: Path) -> None:
        self.path = path
        dll = ctypes.CDLL(str(path))
        self.dll = dll
        vp, u32, sz, i = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t, ctypes.c_int
        sigs: dict[str, tuple[object, list[object]]] = {
            "mp_tlvstore_init": (None, [vp, vp, vp]),
            "mp_tlvstore_load": (i, [vp, ctypes.POINTER(LoadResult)]),
            "mp_tlvstore_get": (i, [vp, u32, ctypes.c_char_p, sz]),
            "mp_tlvstore_store": (i, [vp, u32, ctypes.c_char_p, sz]),
            "mp_tlvstore_delete": (i, [vp, u32]),
            "mp_tlvstore_clear": (i, [vp]),
            "mp_tlvstore_compact": (i, [vp]),
            "mp_tlvstore_count": (sz, [vp]),
            "mp_tlvstore_mode": (i, [vp]),
            "mp_tlvstore_iter_init": (None, [ctypes.POINTER(Iter)]),
            "mp_tlvstore_iter_next": (
                ctypes.c_bool,
                [
                    vp,
                    ctypes.POINTER(Iter),
                    ctypes.POINTER(u32),
                    ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8)),
                    ctypes.POINTER(sz),
                ],
            ),
            "mp_tlvstore_crc32": (u32, [u32, ctypes.c_char_p, sz]),
            "shim_mem_reset": (None, []),
            "shim_mem_power_on": (None, []),
            "shim_mem_is_dead": (i, []),
            "shim_mem_get_file": (i, [i, ctypes.c_char_p, u32]),
            "shim_mem_set_file": (None, [i, ctypes.c_char_p, i]),
            "shim_posix_set_base": (i, [ctypes.c_char_p]),
            "shim_store_size": (u32, []),
            "shim_load_result_size": (u32, []),
        }
        for name, (res, args) in sigs.items():
            fn = getattr(dll, name)
            fn.restype = res
            fn.argtypes = args
        assert dll.shim_load_result_size() == ctypes.sizeof(LoadResult)
        self.stats = Stats.in_dll(dll, "shim_mem_stats")
        self.fault = Fault.in_dll(dll, "shim_mem_fault")

    def io(self, name: str) -> int:
        return ctypes.addressof(ctypes.c_char.in_dll(self.dll, name))

    # In-memory filesystem helpers.
    def mem_reset(self) -> None:
        self.dll.shim_mem_reset()

    def mem_get(self, idx: int) -> bytes | None:
        n = self.dll.shim_mem_get_file(idx, None, 0)
        if n < 0:
            return None
        buf = ctypes.create_string_buffer(max(n, 1))
        self.dll.shim_mem_get_file(idx, buf, n)
        return buf.raw[:n]

    def mem_set(self, idx: int, data: bytes | None) -> None:
        if data is None:
            self.dll.shim_mem_set_file(idx, None, -1)
        else:
            self.dll.shim_mem_set_file(idx, data, len(data))

    def mem_files(self) -> tuple[bytes | None, bytes | None]:
        return self.mem_get(MAIN), self.mem_get(SIDE)

    def mem_restore(self, files: tuple[bytes | None, bytes | None]) -> None:
        self.mem_set(MAIN, files[0])
        self.mem_set(SIDE, files[1])

    def crc32(self, data: bytes) -> int:
        return int(self.dll.mp_tlvstore_crc32(0, data, len(data)))


class Store:
    """One mp_tlvstore_t instance bound to a shim backend."""

    def __init__(self, lib: Lib, backend: str = "mem", truncate: bool = True) -> None:
        self.lib = lib
        self.buf = ctypes.create_string_buffer(lib.dll.shim_store_size())
        io = {
            ("mem", True): "shim_mem_io",
            ("mem", False): "shim_mem_io_notrunc",
            ("posix", True): "shim_posix_io",
            ("posix", False): "shim_posix_io_notrunc",
        }[(backend, truncate)]
        lib.dll.mp_tlvstore_init(self.buf, lib.io(io), None)

    def load(self) -> tuple[int, LoadResult]:
        res = LoadResult()
        rc = self.lib.dll.mp_tlvstore_load(self.buf, ctypes.byref(res))
        return rc, res

    def get(self, t: int) -> bytes | None:
        buf = ctypes.create_string_buffer(256)
        n = self.lib.dll.mp_tlvstore_get(self.buf, t, buf, 256)
        return None if n < 0 else buf.raw[:n]

    def store(self, t: int, value: bytes) -> int:
        return int(self.lib.dll.mp_tlvstore_store(self.buf, t, value, len(value)))

    def delete(self, t: int) -> int:
        return int(self.lib.dll.mp_tlvstore_delete(self.buf, t))

    def clear(self) -> int:
        return int(self.lib.dll.mp_tlvstore_clear(self.buf))

    def compact(self) -> int:
        return int(self.lib.dll.mp_tlvstore_compact(self.buf))

    @property
    def mode(self) -> int:
        return int(self.lib.dll.mp_tlvstore_mode(self.buf))

    def count(self) -> int:
        return int(self.lib.dll.mp_tlvstore_count(self.buf))

    def iter(self) -> Iterator[tuple[int, bytes]]:
        it = Iter()
        self.lib.dll.mp_tlvstore_iter_init(ctypes.byref(it))
        t = ctypes.c_uint32()
        v = ctypes.POINTER(ctypes.c_uint8)()
        n = ctypes.c_size_t()
        while self.lib.dll.mp_tlvstore_iter_next(
            self.buf, ctypes.byref(it), ctypes.byref(t), ctypes.byref(v), ctypes.byref(n)
        ):
            yield t.value, ctypes.string_at(v, n.value)

    def items(self) -> dict[int, bytes]:
        return dict(self.iter())


def apply(store: Store, op: tuple) -> int:
    """Run one scripted operation: ("store", tag, value) / ("delete", tag) / ("clear",)."""
    kind = op[0]
    if kind == "store":
        return store.store(op[1], op[2])
    if kind == "delete":
        return store.delete(op[1])
    if kind == "clear":
        return store.clear()
    if kind == "compact":
        return store.compact()
    raise ValueError(kind)


def model_apply(model: dict[int, bytes], op: tuple) -> dict[int, bytes]:
    out = dict(model)
    if op[0] == "store":
        out[op[1]] = op[2]
    elif op[0] == "delete":
        out.pop(op[1], None)
    elif op[0] == "clear":
        out.clear()
    return out
