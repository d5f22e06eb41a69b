"""Build the bond store core for the host and drive it through ctypes.

The shared library holds extmod/bondstore/bondstore.c and ``shim_mem.c`` (an
in-memory filesystem with fault injection, non-atomic like FAT or POSIX, or atomic
like littlefs).  Builds are cached under ``build/host_bondstore/``, keyed by a hash
of sources and flags.  The format's constants come from the C header
(``bondfile.C``), never from copies here.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
from pathlib import Path

import bondfile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORE_DIR = ROOT / "extmod" / "bondstore"
SOURCES = [CORE_DIR / "bondstore.c", HERE / "shim_mem.c"]
HEADERS = [CORE_DIR / "bondstore.h", HERE / "shim.h"]
BUILD_DIR = Path(os.environ.get("MP_BONDSTORE_BUILD_DIR", ROOT / "build" / "host_bondstore"))

C = bondfile.C
WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes"]
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
# Every supported compile-time setting (the record capacity is a run-time one).
CONFIGS: dict[str, list[str]] = {
    "default": [],
    "align512": ["-DMP_BONDSTORE_COPY_ALIGN=512"],
    "v1tags1": ["-DMP_BONDSTORE_V1_MAX_TAGS=1"],
    "nomigrate": ["-DMP_BONDSTORE_MIGRATE_V1=0"],
}


def setting(name: str) -> int:
    """A compile-time setting of the configuration under test (its -D, or the header's)."""
    for flag in CONFIGS[os.environ.get("MP_BONDSTORE_CONFIG", "default")]:
        if flag.startswith(f"-DMP_BONDSTORE_{name}="):
            return int(flag.split("=", 1)[1])
    return int(C[name])


MAIN, V1_SIDE, RESERVE = C["FILE_MAIN"], C["FILE_V1_SIDE"], C["FILE_RESERVE"]
CUT_UNCHANGED, CUT_GARBAGE, CUT_ZEROS = 0, 1, 2
# BTstack's table (16 device-DB entries of 60 bytes, 20 CCCDs, ER, IR, address).
OVERHEAD = C["RECORD_OVERHEAD"]
BTSTACK_CAPACITY = 16 * (OVERHEAD + 60) + 20 * (OVERHEAD + 8) + 2 * (OVERHEAD + 16) + OVERHEAD + 6


def tag(name: str, index: int | None = None) -> int:
    """'BTD', 3 -> 0x42544403; 'SMER' -> 0x534d4552 (BTstack's big-endian packing)."""
    raw = name.encode() + (bytes([index]) if index is not None else b"")
    assert len(raw) == 4
    return int.from_bytes(raw, "big")


def build(config: str = "default", sanitize: bool = False) -> Path:
    flags = ["-O1", "-g", *SAN] if sanitize else ["-O2", "-g"]
    flags += CONFIGS[config]
    h = hashlib.sha256()
    for p in SOURCES + HEADERS:
        h.update(p.read_bytes())
    h.update(" ".join(WARN + flags).encode())
    out = (
        BUILD_DIR
        / f"libbondstore-{config}-{'asan' if sanitize else 'plain'}-{h.hexdigest()[:16]}.so"
    )
    if out.exists():
        return out
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    cmd = ["gcc", *WARN, *flags, "-fPIC", "-shared", f"-I{CORE_DIR}", f"-I{HERE}"]
    subprocess.run([*cmd, *map(str, SOURCES), "-o", str(tmp)], check=True)
    tmp.replace(out)
    return out


class Stats(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_uint64)
        for n in ("points", "bytes_written", "bytes_read", "writes", "reads", "syncs")
        + ("opens", "closes", "creates", "removes")
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


class Lib:
    """Typed view of the shared library and its in-memory filesystem."""

    def __init__(self, path: Path) -> None:
        self.path = path
        dll = ctypes.CDLL(str(path))
        self.dll = dll
        vp, u32, sz, i = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t, ctypes.c_int
        sigs: dict[str, tuple[object, list[object]]] = {
            "mp_bondstore_init": (None, [vp, vp, vp, vp, sz]),
            "mp_bondstore_load": (i, [vp]),
            "mp_bondstore_get": (i, [vp, u32, ctypes.c_char_p, sz]),
            "mp_bondstore_set": (i, [vp, u32, ctypes.c_char_p, sz]),
            "mp_bondstore_commit": (i, [vp]),
            "mp_bondstore_record": (
                ctypes.c_bool,
                [vp, sz, ctypes.POINTER(u32), ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(sz)],
            ),
            "mp_bondstore_crc": (u32, [ctypes.c_char_p, ctypes.c_uint, u32]),
            "shim_mem_reset": (None, []),
            "shim_mem_power_on": (None, []),
            "shim_mem_set_atomic": (None, [i]),
            "shim_mem_is_dead": (i, []),
            "shim_mem_get_file": (i, [i, ctypes.c_char_p, u32]),
            "shim_mem_set_file": (None, [i, ctypes.c_char_p, i]),
            "shim_store_size": (u32, []),
            "shim_store_mode": (i, [vp]),
            "shim_store_found": (i, [vp]),
        }
        for name, (res, args) in sigs.items():
            fn = getattr(dll, name)
            fn.restype = res
            fn.argtypes = args
        self.stats = Stats.in_dll(dll, "shim_mem_stats")
        self.fault = Fault.in_dll(dll, "shim_mem_fault")
        self.atomic = False

    def io(self) -> int:
        name = "shim_mem_io_atomic" if self.atomic else "shim_mem_io"
        return ctypes.addressof(ctypes.c_char.in_dll(self.dll, name))

    def reset(self, atomic: bool = False) -> None:
        """An empty filesystem, atomic (littlefs) or not (FAT, POSIX)."""
        self.dll.shim_mem_reset()
        self.atomic = atomic
        self.dll.shim_mem_set_atomic(int(atomic))

    def power_on(self) -> None:
        self.dll.shim_mem_power_on()

    @property
    def dead(self) -> bool:
        return bool(self.dll.shim_mem_is_dead())

    def file(self, idx: int = MAIN) -> bytes | None:
        n = self.dll.shim_mem_get_file(idx, None, 0)
        if n < 0:
            return None
        buf = ctypes.create_string_buffer(max(n, 1))
        self.dll.shim_mem_get_file(idx, buf, n)
        return buf.raw[:n]

    def set_file(self, idx: int, data: bytes | None) -> None:
        self.dll.shim_mem_set_file(idx, data, -1 if data is None else len(data))

    def crc(self, data: bytes) -> int:
        """The store's CRC in zlib's convention."""
        return int(self.dll.mp_bondstore_crc(data, len(data), 0xFFFFFFFF)) ^ 0xFFFFFFFF


class Store:
    """One mp_bondstore_t on the library's in-memory filesystem."""

    def __init__(self, lib: Lib, capacity: int = BTSTACK_CAPACITY) -> None:
        self.lib = lib
        self.state = ctypes.create_string_buffer(lib.dll.shim_store_size())
        self.records = ctypes.create_string_buffer(max(capacity, 1))
        lib.dll.mp_bondstore_init(self.state, lib.io(), None, self.records, capacity)

    def load(self) -> int:
        return int(self.lib.dll.mp_bondstore_load(self.state))

    def get(self, t: int) -> bytes | None:
        buf = ctypes.create_string_buffer(256)
        n = self.lib.dll.mp_bondstore_get(self.state, t, buf, 256)
        return None if n < 0 else buf.raw[:n]

    def set(self, t: int, value: bytes | None) -> int:
        return int(self.lib.dll.mp_bondstore_set(self.state, t, value, len(value or b"")))

    def commit(self) -> int:
        return int(self.lib.dll.mp_bondstore_commit(self.state))

    def items(self) -> dict[int, bytes]:
        out = {}
        t, v, n = ctypes.c_uint32(), ctypes.c_void_p(), ctypes.c_size_t()
        i = 0
        while self.lib.dll.mp_bondstore_record(
            self.state, i, ctypes.byref(t), ctypes.byref(v), ctypes.byref(n)
        ):
            out[t.value] = ctypes.string_at(v.value, n.value) if n.value else b""
            i += 1
        return out

    @property
    def mode(self) -> int:
        return int(self.lib.dll.shim_store_mode(self.state))

    @property
    def found(self) -> set[str]:
        """The MP_BONDSTORE_LOAD_* flags of the last load, by name."""
        bits = int(self.lib.dll.shim_store_found(self.state))
        return {k[5:] for k, v in C.items() if k.startswith("LOAD_") and bits & int(v)}
