"""Files of format version 1 are read once and rewritten as version 2, never dropped.

``v1_files/sixteen_bonds.bin`` was written by the version-1 C store (16 bonds, CCCDs,
ER/IR, static address, after a re-pair and an unpair); ``.json`` lists its records.
Other cases are built here from the version-1 spec (v1 layout in ``v1_file``).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import bondfile
import pytest
from bondstore_harness import MAIN, RESERVE, V1_SIDE, C, Lib, Store, setting, tag
from test_powercut import recover

pytestmark = pytest.mark.skipif(
    not setting("MIGRATE_V1"), reason="built without MP_BONDSTORE_MIGRATE_V1"
)
HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "v1_files" / "sixteen_bonds.bin"


def crc(data: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(data))


def v1_header(gen: int) -> bytes:
    h = C["V1_MAGIC"] + struct.pack("<HHII", 1, 24, gen, 0)
    return h + crc(h)


def v1_slot(t: int, value: bytes, seq: int, spare: int = 0) -> bytes:
    cap = 16 + len(value) + spare
    sh = struct.pack("<BBH", 0xA5, 0, cap)
    rec = struct.pack("<BBHII", 1, 0, len(value), t, seq) + value
    return sh + crc(sh) + rec + crc(rec) + bytes(spare)


def v1_file(records: list[tuple[int, bytes, int]], gen: int = 1) -> bytes:
    return v1_header(gen) + b"".join(v1_slot(t, v, seq) for t, v, seq in records)


def v1_side(image: bytes, gen: int) -> bytes:
    h = C["V1_SIDE_MAGIC"] + struct.pack("<HHIII", 1, 32, gen, len(image), zlib.crc32(image))
    h += bytes(4)
    return h + crc(h) + image


def migrate(fs: Lib, main: bytes, side: bytes | None = None) -> Store:
    fs.set_file(MAIN, main)
    fs.set_file(V1_SIDE, side)
    s = Store(fs)
    assert s.load() == 0 and "MIGRATED" in s.found
    return s


def test_a_file_written_by_the_version_1_store(fs: Lib) -> None:
    expected = {
        int(k, 16): bytes.fromhex(v)
        for k, v in json.loads(FIXTURE.with_suffix(".json").read_text()).items()
    }
    s = migrate(fs, FIXTURE.read_bytes())
    assert s.items() == expected and len(expected) == 23
    assert s.commit() == 0
    assert bondfile.parse(fs.file(MAIN)).entries.keys() == expected.keys()
    after = Store(fs)
    assert after.load() == 0 and after.found == set() and after.items() == expected
    assert bytes([7]) * 60 not in fs.file(MAIN), "the unpaired bond was not resurrected"


def test_highest_sequence_number_wins(fs: Lib) -> None:
    t = tag("BTD", 0)
    s = migrate(
        fs, v1_file([(t, b"new" * 20, 9), (t, b"old" * 20, 4), (tag("SMER"), b"e" * 16, 5)])
    )
    assert s.items() == {t: b"new" * 20, tag("SMER"): b"e" * 16}


def test_a_torn_tail_keeps_what_came_before(fs: Lib) -> None:
    data = v1_file([(tag("BTD", 0), b"a" * 60, 1), (tag("BTD", 1), b"b" * 60, 2)])
    # A torn record was a write that never completed: the state before it, silently.
    assert migrate(fs, data[:-20]).items() == {tag("BTD", 0): b"a" * 60}
    # A torn slot header hides what follows it: reported.
    s = migrate(fs, data[: 24 + 84 + 4])
    assert s.items() == {tag("BTD", 0): b"a" * 60} and "V1_DROPPED" in s.found


def test_an_interrupted_compaction_is_read_from_the_side_file(fs: Lib) -> None:
    # Version 1 compacts by writing a snapshot to "<file>.new", then rewriting the
    # main file with zeros where the header goes until the body is complete.
    image = v1_file([(tag("BTD", 0), b"n" * 60, 1)], gen=8)
    main = bytes(24) + image[24:]
    s = migrate(fs, main, v1_side(image, gen=8))
    assert s.items() == {tag("BTD", 0): b"n" * 60}
    assert s.commit() == 0 and fs.file(V1_SIDE) is None, "the side file is gone after the rewrite"


def test_a_stale_side_file_loses_to_a_newer_main_file(fs: Lib) -> None:
    old = v1_file([(tag("BTD", 0), b"o" * 60, 1)], gen=3)
    new = v1_file([(tag("BTD", 0), b"n" * 60, 1)], gen=4)
    assert migrate(fs, new, v1_side(old, gen=3)).items() == {tag("BTD", 0): b"n" * 60}


def test_a_version_1_file_too_big_for_the_buffer_is_left_alone(fs: Lib) -> None:
    data = FIXTURE.read_bytes()
    fs.set_file(MAIN, data)
    s = Store(fs, capacity=300)
    assert s.load() == C["ERR_PROTECTED"] and "TOO_BIG" in s.found
    assert s.commit() == C["ERR_PROTECTED"] and fs.file(MAIN) == data


@pytest.mark.parametrize("stride", [1])
def test_a_cut_anywhere_in_the_migration_loses_nothing(fs: Lib, stride: int) -> None:
    data = FIXTURE.read_bytes()
    expected = migrate(fs, data).items()
    start = fs.stats.points
    s = Store(fs)
    s.load()
    assert s.commit() == 0
    points = int(fs.stats.points - start)
    for k in range(0, points, stride):
        fs.set_file(MAIN, data)
        fs.set_file(V1_SIDE, None)
        fs.set_file(RESERVE, None)
        fs.fault.cut_at = fs.stats.points + k
        s = Store(fs)
        s.load()
        s.commit()
        assert fs.dead
        state, _ = recover(fs)
        assert state == expected, f"cut at {k}/{points}"
        assert bondfile.parse(fs.file(MAIN)).generation is not None, "rewritten as version 2"
