"""The bond store's API and guarantees, on both kinds of filesystem."""

from __future__ import annotations

import zlib

import bondfile
import pytest
from bondstore_harness import BTSTACK_CAPACITY, MAIN, RESERVE, C, Lib, Store, setting, tag

BTD0, BTD1, SMER = tag("BTD", 0), tag("BTD", 1), tag("SMER")


def reload(lib: Lib) -> Store:
    s = Store(lib)
    assert s.load() == 0
    return s


def test_crc_is_zlib_crc32(lib: Lib) -> None:
    assert lib.crc(b"123456789") == 0xCBF43926 == zlib.crc32(b"123456789")


def test_missing_file_is_an_empty_store(fs: Lib) -> None:
    s = Store(fs)
    assert s.load() == 0 and s.items() == {} and s.mode == C["MODE_NEW"]
    assert s.commit() == 0 and fs.file(MAIN) is None, "nothing to write, nothing written"


def test_set_get_commit_reload(fs: Lib) -> None:
    s = Store(fs)
    s.load()
    assert s.set(BTD0, b"a" * 60) == 0 and s.set(SMER, b"k" * 16) == 0
    assert s.get(BTD0) == b"a" * 60 and fs.file(MAIN) is None, "set() alone does no I/O"
    assert s.commit() == 0
    assert reload(fs).items() == {BTD0: b"a" * 60, SMER: b"k" * 16}


def test_get_reports_the_full_length_with_a_small_buffer(fs: Lib) -> None:
    s = Store(fs)
    s.set(BTD0, bytes(range(60)))
    assert fs.dll.mp_bondstore_get(s.state, BTD0, None, 0) == 60


def test_unchanged_value_writes_nothing(fs: Lib) -> None:
    s = Store(fs)
    s.set(BTD0, b"x" * 60)
    s.commit()
    writes = fs.stats.writes
    assert s.set(BTD0, b"x" * 60) == 0 and s.commit() == 0
    assert fs.stats.writes == writes


def test_value_limits(fs: Lib) -> None:
    s = Store(fs, capacity=100)
    assert s.set(BTD0, b"x" * 256) == C["ERR_TOO_BIG"]
    assert s.set(BTD0, b"x" * 90) == 0
    assert s.set(BTD1, b"y" * 10) == C["ERR_FULL"], "9 + 90 + 9 + 10 > 100"
    assert s.set(BTD0, b"z" * 91) == 0, "a replace may use the space it frees"
    assert s.items() == {BTD0: b"z" * 91}


def test_btstack_table_size() -> None:
    assert BTSTACK_CAPACITY == 1509


def test_delete_and_replace_leave_no_old_bytes_in_the_files(fs: Lib) -> None:
    s = Store(fs)
    old_ltk, new_ltk = bytes(range(100, 160)), bytes(range(160, 220))
    s.set(BTD0, old_ltk)
    s.set(BTD1, b"\x01" * 60)
    s.commit()
    s.set(BTD0, new_ltk)
    s.commit()
    assert old_ltk not in fs.file(MAIN)
    s.set(BTD0, None)
    s.commit()
    data = fs.file(MAIN)
    assert new_ltk not in data and old_ltk not in data
    assert reload(fs).items() == {BTD1: b"\x01" * 60}


def test_file_size_is_bounded(fs: Lib) -> None:
    s = Store(fs)
    sizes = set()
    for i in range(200):
        s.set(tag("BTD", i % 16), bytes([i]) * 60)
        s.set(tag("BTC", i % 20), bytes([i]) * 8)
        assert s.commit() == 0
        sizes.add(len(fs.file(MAIN)))
    if fs.atomic:
        assert max(sizes) == 16 + 16 * 69 + 20 * 17, "just the image"
    else:
        align = setting("COPY_ALIGN")
        copy = -(-(16 + BTSTACK_CAPACITY) // align) * align
        assert sizes == {copy + 16 + BTSTACK_CAPACITY}, "created at its full size, never grows"


@pytest.mark.parametrize(
    "content",
    [b"print('hello')\n" * 3, b"\x00\x01garbage", b"X", b"\xff" * 600],
    ids=["text", "binary", "one-byte", "erased-flash"],
)
def test_a_foreign_file_is_never_written(fs: Lib, content: bytes) -> None:
    fs.set_file(MAIN, content)
    s = Store(fs)
    assert s.load() == C["ERR_PROTECTED"]
    assert "FOREIGN" in s.found and s.mode == C["MODE_PROTECTED"]
    assert s.set(BTD0, b"k" * 60) == 0, "bonds still work in RAM"
    assert s.commit() == C["ERR_PROTECTED"]
    assert fs.file(MAIN) == content


@pytest.mark.parametrize("content", [b"", b"MP", b"\x00" * 700], ids=["empty", "torn", "zeros"])
def test_blank_or_torn_first_write_is_ours(fs: Lib, content: bytes) -> None:
    fs.set_file(MAIN, content)
    s = Store(fs)
    assert s.load() == 0
    s.set(BTD0, b"k" * 60)
    assert s.commit() == 0 and reload(fs).items() == {BTD0: b"k" * 60}


def image(records: bytes, gen: int = 1, version: int = 2) -> bytes:
    h = (
        b"MPBS"
        + bytes([version, 0])
        + len(records).to_bytes(2, "little")
        + gen.to_bytes(4, "little")
    )
    return h + zlib.crc32(h + records).to_bytes(4, "little") + records


def record(t: int, value: bytes) -> bytes:
    r = t.to_bytes(4, "little") + bytes([len(value)]) + value
    return r + zlib.crc32(r).to_bytes(4, "little")


def test_a_newer_version_is_left_alone(fs: Lib) -> None:
    data = image(record(BTD0, b"x"), version=3)
    fs.set_file(MAIN, data)
    s = Store(fs)
    assert s.load() == C["ERR_PROTECTED"] and "NEWER" in s.found
    s.set(BTD0, b"y")
    assert s.commit() == C["ERR_PROTECTED"] and fs.file(MAIN) == data


def test_more_records_than_fit_are_kept_on_disk(fs: Lib) -> None:
    data = image(b"".join(record(tag("BTD", i), b"v" * 60) for i in range(16)))
    fs.set_file(MAIN, data)
    s = Store(fs, capacity=200)
    assert s.load() == C["ERR_PROTECTED"] and "TOO_BIG" in s.found
    assert s.commit() == C["ERR_PROTECTED"] and fs.file(MAIN) == data


def test_records_that_do_not_add_up_are_foreign(fs: Lib) -> None:
    data = image(record(BTD0, b"v" * 10)[:-3])
    fs.set_file(MAIN, data)
    s = Store(fs)
    assert s.load() == C["ERR_PROTECTED"] and "FOREIGN" in s.found


def test_a_damaged_image_keeps_its_intact_records(fs: Lib) -> None:
    # Not a power cut (a cut always leaves one whole image): a flipped byte.
    records = [record(tag("BTD", i), bytes([i]) * 60) for i in range(4)]
    data = bytearray(image(b"".join(records), gen=5))
    data[16 + 69 + 30] ^= 0x40  # inside BTD1's value
    fs.set_file(MAIN, bytes(data))
    s = Store(fs)
    assert s.load() == 0 and "SALVAGED" in s.found
    assert s.items() == {tag("BTD", i): bytes([i]) * 60 for i in (0, 2, 3)}
    assert s.commit() == 0
    after = reload(fs)
    assert after.items() == s.items() and after.found == set()


def test_a_damaged_length_loses_only_what_it_hides(fs: Lib) -> None:
    records = [record(tag("BTD", i), bytes([i]) * 60) for i in range(3)]
    data = bytearray(image(b"".join(records)))
    data[16 + 69 + 4] = 200  # BTD1's length
    fs.set_file(MAIN, bytes(data))
    s = Store(fs)
    assert s.load() == 0 and s.items() == {tag("BTD", 0): bytes([0]) * 60}


def test_newest_generation_wins_and_the_other_is_removed(fs: Lib) -> None:
    older, newer = image(record(BTD0, b"old"), gen=7), image(record(BTD0, b"new"), gen=8)
    fs.set_file(MAIN, newer + bytes(4096 - len(newer)) + older)
    s = Store(fs)
    assert s.load() == 0 and s.items() == {BTD0: b"new"} and "DAMAGED" in s.found
    assert s.commit() == 0, "a file with stale bytes is rewritten"
    assert b"old" not in fs.file(MAIN)
    assert reload(fs).items() == {BTD0: b"new"}


def test_generation_order_wraps(fs: Lib) -> None:
    a, b = image(record(BTD0, b"a"), gen=0xFFFFFFFF), image(record(BTD0, b"b"), gen=0)
    fs.set_file(MAIN, a + bytes(512 - len(a)) + b)
    assert reload(fs).items() == {BTD0: b"b"}


def test_read_only_filesystem(fs: Lib) -> None:
    s = Store(fs)
    s.set(BTD0, b"a" * 60)
    s.commit()
    before = fs.file(MAIN)
    fs.fault.rofs = 1
    s = reload(fs)
    s.set(BTD1, b"b" * 60)
    assert s.commit() == C["ERR_ROFS"]
    assert s.get(BTD1) == b"b" * 60, "RAM keeps the change for the session"
    assert fs.file(MAIN) == before
    fs.fault.rofs = 0
    assert s.commit() == 0, "the change stays pending and lands later"
    assert reload(fs).get(BTD1) == b"b" * 60


def test_read_error_protects_the_file(fs: Lib) -> None:
    s = Store(fs)
    s.set(BTD0, b"a" * 60)
    s.commit()
    before = fs.file(MAIN)
    fs.fault.fail_read_at = fs.stats.reads
    s = Store(fs)
    assert s.load() == C["ERR_PROTECTED"] and "READ_ERROR" in s.found
    assert s.commit() == C["ERR_PROTECTED"] and fs.file(MAIN) == before


def fill(fs: Lib, s: Store) -> None:
    for i in range(16):
        s.set(tag("BTD", i), bytes([i]) * 60)
    assert s.commit() == 0
    # Now the filesystem is full: nothing else fits.
    fs.fault.space_limit = sum(len(fs.file(i) or b"") for i in range(3))


def test_delete_on_a_full_filesystem_is_durable(fs: Lib) -> None:
    s = Store(fs)
    fill(fs, s)
    removes = fs.stats.removes
    s.set(tag("BTD", 3), None)
    assert s.commit() == 0
    assert tag("BTD", 3) not in reload(fs).items()
    if fs.atomic:
        # Copy on write: the rewrite needed the reserve's space.
        assert fs.stats.removes == removes + 1
        fs.set_file(RESERVE, None)
        fs.fault.space_limit = sum(len(fs.file(i) or b"") for i in range(3))
        s.set(tag("BTD", 4), None)
        assert s.commit() == C["ERR_NOSPC"], "without the reserve the delete could not be made"
        assert tag("BTD", 4) in reload(fs).items()
    else:
        assert fs.stats.removes == removes, "in place: the file never needs more space"


def test_a_failed_commit_keeps_the_old_state_and_retries(fs: Lib) -> None:
    s = Store(fs)
    s.set(BTD0, b"a" * 60)
    s.commit()
    fs.fault.fail_sync_at = fs.stats.syncs
    s.set(BTD0, b"b" * 60)
    assert s.commit() == C["ERR_IO"]
    assert s.commit() == 0
    assert reload(fs).items() == {BTD0: b"b" * 60}


def test_a_file_removed_while_in_use_is_written_anew(fs: Lib) -> None:
    s = Store(fs)
    for i in range(3):
        s.set(tag("BTD", i), bytes([i]) * 60)
        assert s.commit() == 0
    fs.set_file(MAIN, None)
    s.set(tag("BTD", 3), b"\x03" * 60)
    assert s.commit() == 0, "a missing file is created, not an error"
    data = fs.file(MAIN)
    assert reload(fs).items() == s.items()
    image_at = bondfile.parse(data).offset
    assert not any(data[:image_at]), "no undefined gap before the image"
