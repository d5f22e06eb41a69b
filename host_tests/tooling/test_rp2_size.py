"""The pure parts of ``mpoverlay size``: parsing tool output and the tables (no toolchain)."""

from __future__ import annotations

import pytest

from mpoverlay import size
from mpoverlay.size import Sizes

SIZE_OUTPUT = """\
   text	   data	    bss	    dec	    hex	filename
 887212	      0	  45448	 932660	  e3b34	/somewhere/firmware.elf
"""

NM_OUTPUT = """\
00000000 00000001 b bond_file_mode
00000000 00000041 b bond_file_path
00000000 00000140 T mp_bluetooth_btstack_bond_store_init
         U mp_obj_new_str
"""

OBJ = "CMakeFiles/firmware.dir/x/tree/extmod/bondstore/bondstore.c.o"
TLV = "CMakeFiles/t/lib/btstack/src/ble/le_device_db_tlv.c.o"
MAP = f"""\
Archive member included to satisfy reference by file (symbol)

Discarded input sections

 .text.mp_bondstore_clear
                0x00000000       0x28 {OBJ}

Memory Configuration

Linker script and memory map

.text           0x10000000    0xd6000
 *(.text*)
 .text.put32    0x10053104       0x10 {OBJ}
 .text.mp_bondstore_load
                0x10053120      0x4e4 {OBJ}
                0x10053120                mp_bondstore_load
 *fill*         0x10053604        0x4
 .rodata.crc_nibble
                0x10060000       0x40 {OBJ}
 .text.other    0x10070000      0x100 CMakeFiles/firmware.dir/x/tree/py/gc.c.o
.data           0x20000000      0x100
 .data.counter  0x20000010        0x4 {OBJ}
.bss            0x20001000     0x1000
 .bss.entry_map
                0x20001010       0x10 {TLV}
 COMMON         0x20001020        0x8 {OBJ}
.debug_info     0x00000000    0x10000
 .debug_info    0x00000000      0x500 {OBJ}
"""

READELF = """\
 <1><11a0>: Abbrev Number: 45 (DW_TAG_structure_type)
    <11a1>   DW_AT_name        : (indirect string, offset: 0x5): _mp_bluetooth_btstack_bond_store_t
    <11a5>   DW_AT_byte_size   : 2976
 <1><1450>: Abbrev Number: 45 (DW_TAG_structure_type)
    <1455>   DW_AT_name        : (indirect string, offset: 0xbff): _mp_bondstore_t
    <1459>   DW_AT_byte_size   : 2968
 <1><1500>: Abbrev Number: 6 (DW_TAG_typedef)
    <1501>   DW_AT_name        : (indirect string, offset: 0x600): mp_bondstore_t
    <1505>   DW_AT_type        : <0x1450>
 <1><1580>: Abbrev Number: 45 (DW_TAG_structure_type)
    <1581>   DW_AT_name        : _mp_bondstore_vfs_t
    <1584>   DW_AT_byte_size   : 8
 <1><1590>: Abbrev Number: 6 (DW_TAG_typedef)
    <1591>   DW_AT_name        : mp_bondstore_vfs_t
    <1595>   DW_AT_type        : <0x1580>
 <1><15b2>: Abbrev Number: 6 (DW_TAG_typedef)
    <15b3>   DW_AT_name        : (indirect string, offset: 0x6): mp_bluetooth_btstack_bond_store_t
    <15ba>   DW_AT_type        : <0x11a0>
"""


def test_parse_size_berkeley() -> None:
    assert size.parse_size(SIZE_OUTPUT) == Sizes(887212, 0, 45448)


def test_parse_size_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        size.parse_size("arm-none-eabi-size: 'x': No such file\n")


def test_parse_nm_keeps_sized_symbols_only() -> None:
    syms = size.parse_nm(NM_OUTPUT)
    assert [(s.name, s.size, s.kind) for s in syms] == [
        ("bond_file_mode", 1, "b"),
        ("bond_file_path", 0x41, "b"),
        ("mp_bluetooth_btstack_bond_store_init", 0x140, "T"),
    ]


def test_sizes_arithmetic() -> None:
    assert Sizes(10, 2, 5) - Sizes(4, 2, 7) == Sizes(6, 0, -2)
    assert Sizes(1, 2, 3) + size.ZERO == Sizes(1, 2, 3)


def test_parse_map_sums_linked_sections_per_object() -> None:
    got = size.parse_map(
        MAP, ["extmod/bondstore/bondstore.c", "lib/btstack/src/ble/le_device_db_tlv.c"]
    )
    # Discarded .text.mp_bondstore_clear and debug sections are not counted.
    assert got["extmod/bondstore/bondstore.c"] == Sizes(0x10 + 0x4E4 + 0x40, 4, 8)
    assert got["lib/btstack/src/ble/le_device_db_tlv.c"] == Sizes(0, 0, 0x10)


def test_parse_map_needs_a_map() -> None:
    with pytest.raises(ValueError):
        size.parse_map("hello", ["a.c"])


def test_parse_map_matches_whole_path_components() -> None:
    text = "Linker script and memory map\n .text.f  0x1 0x20 build/ext/my_bondstore.c.o\n"
    assert size.parse_map(text, ["bondstore.c"]) == {"bondstore.c": size.ZERO}


def test_dwarf_type_sizes_follows_typedefs() -> None:
    got = size.dwarf_type_sizes(READELF, size.HEAP_TYPES)
    assert got == {
        "mp_bluetooth_btstack_bond_store_t": 2976,
        "mp_bondstore_t": 2968,
        "mp_bondstore_vfs_t": 8,
    }


def test_heap_report_rounds_to_gc_blocks() -> None:
    line = size.heap_report(size.dwarf_type_sizes(READELF, size.HEAP_TYPES))
    assert "= 2,976 B (mp_bondstore_t 2,968 + mp_bondstore_vfs_t 8)" in line
    assert "186 GC blocks = 2,976 B" in line
    assert "not in the DWARF" in size.heap_report({})


def test_format_table_signs_deltas() -> None:
    table = size.format_table(
        "RPI_PICO_W",
        [("(a) upstream", Sizes(878212, 0, 45576), False), ("c-a", Sizes(9000, 0, -128), True)],
    )
    lines = table.splitlines()
    assert lines[0].split() == ["RPI_PICO_W", "text", "data", "bss"]
    assert lines[1].split()[-3:] == ["878,212", "0", "45,576"]
    assert lines[2].split()[-3:] == ["+9,000", "+0", "-128"]
    assert len({len(line) for line in lines}) == 1  # columns line up


def test_verdict_against_targets() -> None:
    ok = size.verdict(Sizes(2048, 0, 0), Sizes(4096, 28, 100))
    assert ok.count(": ok)") == 3, ok
    over = size.verdict(Sizes(2049, 0, 0), Sizes(4100, 0, 129))
    assert "OVER by 1 B" in over and "OVER by 4 B" in over and over.count("OVER") == 3, over
