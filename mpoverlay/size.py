"""Benchmark (not a test): what the overlay and the bond store cost in rp2 firmware.

For each board, three builds (kept, so a rerun only relinks what changed):

- (a) pinned upstream, unpatched (``build/tree-upstream``);
- (b) our overlay with ``MICROPY_BLUETOOTH_BTSTACK_BOND_STORE=OFF``;
- (c) our full overlay (the firmware ``rp2`` publishes).

Then ``arm-none-eabi-size`` of each, the deltas c-b (the store alone) and c-a
(the whole overlay), what the store's own objects add once linked (from the
linker map), their largest symbols (``nm --size-sort -S``), and the RAM the
store takes: static (data + bss of its objects) and on the MicroPython heap
at ``active(1)`` (``sizeof`` its state, read from the DWARF of its object).
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import REPO_ROOT
from .lock import load_lock
from .rp2 import Rp2Config, Rp2Inputs, build_rp2
from .tree import prepared_from
from .upstream import locate

# Our objects that only a build with the store has, and what (b) has instead.
CORE = "extmod/bondstore/bondstore.c"
GLUE = "extmod/btstack/btstack_bond_store.c"
STORE_SOURCES = (
    CORE,
    "extmod/bondstore/bondstore_vfs.c",
    GLUE,
    "lib/btstack/src/ble/le_device_db_tlv.c",
)
NO_STORE_SOURCES = ("lib/btstack/src/ble/le_device_db_memory.c",)
HEAP_TYPES = ("mp_bluetooth_btstack_bond_store_t", "mp_bondstore_t", "mp_bondstore_vfs_t")
GC_BLOCK = 16  # bytes per MicroPython GC block on 32-bit ports

# Targets on RPI_PICO_W (linked text): the core; the store (core, VFS adapter and
# BTstack glue, not le_device_db_tlv.c); its static RAM.  And a published reference.
CORE_TARGET_TEXT = 2048
STORE_TARGET_TEXT = 4096
STORE_TARGET_RAM = 128
REFERENCE = ("PR #17469 at its base, RPI_PICO_W", 880_484, 45_384)


@dataclass(frozen=True)
class Sizes:
    text: int
    data: int
    bss: int

    def __sub__(self, other: Sizes) -> Sizes:
        return Sizes(self.text - other.text, self.data - other.data, self.bss - other.bss)

    def __add__(self, other: Sizes) -> Sizes:
        return Sizes(self.text + other.text, self.data + other.data, self.bss + other.bss)


ZERO = Sizes(0, 0, 0)


@dataclass(frozen=True)
class Symbol:
    name: str
    size: int
    kind: str  # nm's letter: t/T code, r/R read-only data, d/D data, b/B bss


def parse_size(output: str) -> Sizes:
    """The first file of ``size --format=berkeley`` output."""
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 3 and all(f.isdigit() for f in fields[:3]):
            return Sizes(int(fields[0]), int(fields[1]), int(fields[2]))
    raise ValueError(f"no sizes in size output: {output!r}")


def parse_nm(output: str) -> list[Symbol]:
    """Symbols with a size from ``nm -S`` output (``addr size kind name``)."""
    symbols = []
    for line in output.splitlines():
        fields = line.split(maxsplit=3)
        if len(fields) == 4:
            symbols.append(Symbol(fields[3], int(fields[1], 16), fields[2]))
    return symbols


_DEBUG_SECTIONS = (".debug", ".comment", ".ARM.attributes", ".note", ".stab")
_MAP_ENTRY = re.compile(r"^ (\S+)?\s+0x[0-9a-fA-F]+\s+0x([0-9a-fA-F]+)\s+(\S+)$")


def _section_class(section: str) -> str | None:
    if section.startswith(_DEBUG_SECTIONS):
        return None
    if section.startswith((".bss", ".sbss", "COMMON")):
        return "bss"
    if section.startswith((".data", ".sdata")):
        return "data"
    return "text"


def _matches_source(obj: str, source: str) -> bool:
    return obj.endswith((f"/{source}.o", f"/{source}.obj"))


def parse_map(text: str, sources: Iterable[str]) -> dict[str, Sizes]:
    """What each source's object contributes to the linked image (GNU ld map).

    Input sections listed under "Linker script and memory map" are summed by
    kind; discarded sections (garbage-collected functions) are not counted.
    """
    sources = tuple(sources)
    totals = dict.fromkeys(sources, ZERO)
    _, found, body = text.partition("Linker script and memory map")
    if not found:
        raise ValueError("not a GNU ld map file")
    section = ""
    for line in body.splitlines():
        if re.match(r"^ \S+$", line):  # a long section name, details on the next line
            section = line.strip()
            continue
        m = _MAP_ENTRY.match(line)
        if not m:
            continue
        section = m.group(1) or section
        size, obj = int(m.group(2), 16), m.group(3)
        kind = _section_class(section)
        source = next((s for s in sources if _matches_source(obj, s)), None)
        if kind is None or source is None or size == 0:
            continue
        totals[source] = totals[source] + Sizes(
            size if kind == "text" else 0,
            size if kind == "data" else 0,
            size if kind == "bss" else 0,
        )
    return totals


_DIE = re.compile(r"^\s*<\d+><([0-9a-f]+)>: Abbrev Number: \d+ \((DW_TAG_\w+)\)")
_ATTR = re.compile(r"^\s*<[0-9a-f]+>\s+(DW_AT_\w+)\s*:\s*(.*)$")


def dwarf_type_sizes(readelf_info: str, names: Iterable[str]) -> dict[str, int]:
    """``sizeof`` of named typedefs/structs from ``readelf --debug-dump=info``."""
    dies: dict[int, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in readelf_info.splitlines():
        m = _DIE.match(line)
        if m:
            current = {"tag": m.group(2)}
            dies[int(m.group(1), 16)] = current
            continue
        m = _ATTR.match(line)
        if m and current is not None:
            value = m.group(2).strip()
            if m.group(1) == "DW_AT_name":
                value = value.rsplit(": ", 1)[-1]  # "(indirect string, offset: 0x..): name"
            current[m.group(1)] = value

    def size_of(die: dict[str, str], depth: int = 0) -> int | None:
        if "DW_AT_byte_size" in die:
            return int(die["DW_AT_byte_size"], 0)
        ref = re.match(r"<0x([0-9a-f]+)>", die.get("DW_AT_type", ""))
        if ref is None or depth > 8:
            return None
        target = dies.get(int(ref.group(1), 16))
        return size_of(target, depth + 1) if target else None

    wanted = set(names)
    sizes: dict[str, int] = {}
    for die in dies.values():
        name = die.get("DW_AT_name")
        if name in wanted and die["tag"] in ("DW_TAG_typedef", "DW_TAG_structure_type"):
            size = size_of(die)
            if size is not None and "DW_AT_declaration" not in die:
                sizes[name] = size
    return sizes


def _num(n: int, signed: bool = False) -> str:
    return f"{n:+,}" if signed else f"{n:,}"


def format_table(title: str, rows: list[tuple[str, Sizes, bool]]) -> str:
    """Rows of (label, sizes, is_delta) under a text/data/bss header."""
    width = max(len(title), *(len(r[0]) for r in rows)) + 2
    lines = [f"{title:<{width}}{'text':>10}{'data':>10}{'bss':>10}"]
    for label, s, delta in rows:
        cells = "".join(f"{_num(v, delta):>10}" for v in (s.text, s.data, s.bss))
        lines.append(f"{label:<{width}}{cells}")
    return "\n".join(lines)


def verdict(core: Sizes, store: Sizes) -> str:
    """The targets, against the linked sizes of the core and of the whole store."""

    def check(value: int, limit: int) -> str:
        return "ok" if value <= limit else f"OVER by {value - limit:,} B"

    ram = store.data + store.bss
    return (
        f"targets: core text {core.text:,} B (<= {CORE_TARGET_TEXT:,}: "
        f"{check(core.text, CORE_TARGET_TEXT)}); store text {store.text:,} B "
        f"(<= {STORE_TARGET_TEXT:,}: {check(store.text, STORE_TARGET_TEXT)}); "
        f"static RAM {ram} B (<= {STORE_TARGET_RAM}: {check(ram, STORE_TARGET_RAM)})"
    )


def heap_report(sizes: dict[str, int]) -> str:
    total = sizes.get(HEAP_TYPES[0])
    if total is None:
        return "heap at active(1): sizeof(mp_bluetooth_btstack_bond_store_t) not in the DWARF"
    blocks = -(-total // GC_BLOCK)
    parts = " + ".join(f"{n} {sizes[n]:,}" for n in HEAP_TYPES[1:] if n in sizes)
    return (
        f"heap at active(1): sizeof({HEAP_TYPES[0]}) = {total:,} B ({parts});"
        f" {blocks} GC blocks = {blocks * GC_BLOCK:,} B, plus the two path strings"
    )


def _tool(args: list[str]) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def _object(build: Path, source: str) -> Path | None:
    base = build / "CMakeFiles"
    return next(
        (p for p in base.rglob(Path(source).name + ".o*") if _matches_source(str(p), source)),
        None,
    )


def _symbols_report(build: Path, sources: Iterable[str], top: int) -> list[str]:
    lines = []
    for source in sources:
        obj = _object(build, source)
        if obj is None:
            continue
        symbols = parse_nm(_tool(["arm-none-eabi-nm", "--size-sort", "-S", str(obj)]))
        symbols.sort(key=lambda s: -s.size)
        shown = ", ".join(f"{s.name} {s.size} {s.kind}" for s in symbols[:top])
        more = f", ... ({len(symbols)} symbols)" if len(symbols) > top else ""
        text = f"{Path(source).name}: {shown}{more}"
        lines.append(textwrap.fill(text, 99, initial_indent="  ", subsequent_indent="      "))
    return lines


def board_report(board: str, a: Path, b: Path, c: Path) -> str:
    """Everything measured for one board, from the three firmware.elf files."""
    sa, sb, sc = (parse_size(_tool(["arm-none-eabi-size", str(elf)])) for elf in (a, b, c))
    store, overlay = sc - sb, sc - sa
    rows = [
        ("(a) upstream, unpatched", sa, False),
        ("(b) overlay, bond store OFF", sb, False),
        ("(c) overlay, full", sc, False),
        ("store alone (c-b)", store, True),
        ("whole overlay (c-a)", overlay, True),
    ]
    if board == "RPI_PICO_W":
        rows.append((f"ref: {REFERENCE[0]}", Sizes(REFERENCE[1], 0, REFERENCE[2]), False))
    out = [format_table(board, rows)]
    linked_c = parse_map((c.parent / "firmware.elf.map").read_text(), STORE_SOURCES)
    linked_b = parse_map((b.parent / "firmware.elf.map").read_text(), NO_STORE_SOURCES)
    obj_rows = [(f"(c) {Path(s).name}", v, False) for s, v in linked_c.items()]
    obj_rows += [(f"(b) {Path(s).name}", v, False) for s, v in linked_b.items()]
    total = sum(linked_c.values(), ZERO)
    obj_rows.append(("(c) store objects, total", total, False))
    out.append(format_table("linked objects (linker map)", obj_rows))
    ours = sum((linked_c[src] for src in STORE_SOURCES[:3]), ZERO)
    out.append(verdict(linked_c[CORE], ours))
    out.append("largest symbols (arm-none-eabi-nm --size-sort -S, per object):")
    out += _symbols_report(c.parent, STORE_SOURCES, 8)
    out += _symbols_report(b.parent, NO_STORE_SOURCES, 4)
    out.append(f"static RAM of the store objects: data {total.data:,} B, bss {total.bss:,} B")
    bond_obj = _object(c.parent, GLUE)
    if bond_obj is not None:
        info = _tool(["arm-none-eabi-readelf", "--debug-dump=info", str(bond_obj)])
        out.append(heap_report(dwarf_type_sizes(info, HEAP_TYPES)))
    return "\n".join(line for line in out if line)


def run(micropy_dir: str | None, allow_fetch: bool, boards: list[str], inputs: Rp2Inputs) -> str:
    """Build what is missing (incrementally) and return the report."""
    lock = load_lock(REPO_ROOT / "upstream.lock")
    subs = inputs.substitutes()
    upstream = locate(lock, ("rp2",), micropy_dir, allow_fetch, subs)
    ours = prepared_from(upstream, lock, subs)
    pristine = prepared_from(upstream, lock, subs, upstream_only=True)
    reports = []
    for board in boards:
        elves = []
        for tree, config, label in (
            (pristine, Rp2Config(board), "upstream"),
            (ours, Rp2Config(board, bond_store=False), "overlay"),
            (ours, Rp2Config(board), "overlay"),
        ):
            built = build_rp2(tree, config, inputs, label)
            print(f"built: {built.what} {config.build_name} ({built.seconds:.1f} s)", flush=True)
            elves.append(built.path)
        reports.append(board_report(board, *elves))
    return "\n\n".join(reports)
