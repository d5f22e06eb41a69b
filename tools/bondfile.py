#!/usr/bin/env python3
"""Inspect a MicroPython bond store file (spec/bond-store.md, format version 2).

Usage: python tools/bondfile.py FILE [--show-keys] [--json] [--strict]

Lists the records of the newest valid image with their tags decoded (BTstack:
'BTD'+i le_device_db entry i, 'SMER'/'SMIR' the stack's ER/IR root keys, 'BTC'+i
CCCD entry i; NimBLE: 'NOS'+i/'NPS'+i our/the peer's security record, 'NCC'+i CCCD,
'NIRK' the device's IRK; both: 'MPSA' the device's static address) and reports what the
firmware's loader would find: other images, torn or stale bytes (removed at the next
commit), a version-1 file (migrated at the next ``ble.active(1)``).  Key material is
only printed with --show-keys.  The format's constants are read from the C header
(extmod/bondstore/bondstore.h) next to this tool.  Standard library only.

Exit status: 0 parsed (issues are reported), 1 with --strict if there are issues,
2 if FILE is not a bond store (or is unreadable, or of a newer version).
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = Path(__file__).resolve().parents[1] / "extmod" / "bondstore" / "bondstore.h"

ADDR_TYPES = {
    0: "public",
    1: "random",
    2: "public-identity",
    3: "random-identity",
    0xFC: "sco",
    0xFD: "acl",
    0xFE: "unknown",
}


def read_constants(header: Path = HEADER) -> dict[str, int | bytes]:
    """``#define MP_BONDSTORE_X value`` lines of the C header: ints and strings."""
    out: dict[str, int | bytes] = {}
    pattern = re.compile(r"^#define MP_BONDSTORE_(\w+) (\(-?\d+\)|\"[^\"]*\")", re.M)
    for name, value in pattern.findall(header.read_text()):
        if value.startswith('"'):
            out[name] = value[1:-1].encode().decode("unicode_escape").encode("latin-1")
        else:
            out[name] = int(value.strip("()"))
    return out


C = read_constants()
MAGIC = C["MAGIC"]
VERSION = C["VERSION"]
HEADER_LEN = C["HEADER_LEN"]
RECORD_HEADER_LEN = C["RECORD_HEADER_LEN"]
RECORD_OVERHEAD = C["RECORD_OVERHEAD"]
IMAGE_ALIGN = C["IMAGE_ALIGN"]
FILE_MAX = C["FILE_MAX"]
V1_MAGIC = C["V1_MAGIC"]


class NotAStoreError(Exception):
    pass


@dataclass
class Entry:
    tag: int
    value: bytes


@dataclass
class Image:
    offset: int
    generation: int
    records: bytes


@dataclass
class Parsed:
    version: int | None
    generation: int | None
    size: int
    offset: int | None  # of the newest valid image
    entries: dict[int, Entry] = field(default_factory=dict)
    issues: list[str] = field(default_factory=list)


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def image_at(data: bytes, pos: int) -> Image | None:
    """The valid version-2 image at ``pos``, if there is one (spec 3)."""
    h = data[pos : pos + HEADER_LEN]
    if len(h) < HEADER_LEN or h[:4] != MAGIC or h[C["HEADER_VERSION"]] != VERSION:
        return None
    if h[C["HEADER_ZERO"]] != 0:
        return None
    length = struct.unpack_from("<H", h, C["HEADER_LENGTH"])[0]
    gen, crc = (struct.unpack_from("<I", h, C[f"HEADER_{f}"])[0] for f in ("GENERATION", "CRC"))
    body = data[pos + HEADER_LEN : pos + HEADER_LEN + length]
    if len(body) != length or crc32(h[: C["HEADER_CRC"]] + body) != crc:
        return None
    return Image(pos, gen, body)


def records(body: bytes, salvage: bool = False) -> dict[int, Entry]:
    """The records of an image (spec 3.2); salvaging, those that pass their CRC."""
    out: dict[int, Entry] = {}
    p = 0
    while p + RECORD_OVERHEAD <= len(body):
        tag, n = struct.unpack_from("<IB", body, p)
        end = p + RECORD_OVERHEAD + n
        if end > len(body):
            break
        if crc32(body[p : end - 4]) == struct.unpack_from("<I", body, end - 4)[0]:
            out[tag] = Entry(tag, body[p + RECORD_HEADER_LEN : end - 4])
        elif not salvage:
            break
        p = end
    if not salvage and p != len(body):
        raise NotAStoreError("image records do not add up (not written by a bond store)")
    return out


def newer(a: int, b: int) -> bool:
    """Serial-number order of generations (spec 4.1)."""
    return 0 < ((a - b) & 0xFFFFFFFF) < 0x80000000


def parse(data: bytes) -> Parsed:
    """What the firmware's loader reads from a bond file (spec 4)."""
    if len(data) > FILE_MAX:
        raise NotAStoreError(f"{len(data)} bytes: larger than any bond store")
    positions = range(0, len(data), IMAGE_ALIGN)
    magic_at = [p for p in positions if data[p : p + 4] == MAGIC[: len(data) - p]]
    best: Image | None = None
    for p in magic_at:
        img = image_at(data, p)
        if img and (best is None or newer(img.generation, best.generation)):
            best = img
    if best is None:
        at = C["HEADER_VERSION"]
        # A torn header can look newer too: only without a valid image is it one.
        if any(data[p + at] > VERSION for p in magic_at if p + at < len(data)):
            raise NotAStoreError("written by a newer format version")
        if data.startswith(V1_MAGIC):
            raise NotAStoreError("format version 1: the firmware migrates it at ble.active(1)")
        at = C["HEADER_VERSION"]
        torn = [p for p in magic_at if data[p + at : p + at + 1] == bytes([VERSION])]
        if torn:
            # No whole image (not a power cut): what the loader salvages.
            p = torn[-1]
            at = p + C["HEADER_LENGTH"]
            length = struct.unpack_from("<H", data, at)[0] if at + 2 <= len(data) else 0
            body = data[p + HEADER_LEN : p + HEADER_LEN + length]
            found = records(body, salvage=True)
            return Parsed(VERSION, None, len(data), p, found, ["damaged image: records salvaged"])
        if magic_at or not any(data):
            return Parsed(
                VERSION, None, len(data), None, issues=["no complete image"] * bool(data)
            )
        raise NotAStoreError("no bond store image in this file")
    out = Parsed(VERSION, best.generation, len(data), best.offset, records(best.records))
    others = [p for p in magic_at if p != best.offset]
    end = best.offset + HEADER_LEN + len(best.records)
    if others:
        out.issues.append(f"other image(s) at {others}: removed at the next commit")
    elif any(data[: best.offset]) or any(data[end:]):
        out.issues.append("torn or stale bytes outside the image: zeroed at the next commit")
    return out


def tag_name(t: int) -> str:
    raw = t.to_bytes(4, "big")
    if raw[:3] in (b"BTD", b"BTC", b"NOS", b"NPS", b"NCC"):
        return f"'{raw[:3].decode()}'+{raw[3]}"
    if all(32 <= c < 127 for c in raw):
        return f"'{raw.decode()}'"
    return f"0x{t:08x}"


def hexs(b: bytes) -> str:
    return b.hex()


def decode_device_db(v: bytes, show: bool) -> dict[str, Any]:
    """le_device_db_entry_t from lib/btstack/src/ble/le_device_db_tlv.c.

    Raw struct dump, little-endian, natural alignment: seq_nr u32 @0, addr_type int @4,
    addr[6] @8, irk[16] @14, ltk[16] @30, ediv u16 @46, rand[8] @48, key_size @56,
    authenticated @57, authorized @58, secure_connection @59 = 60 bytes (identical on
    32-bit ARM and x86_64: no member needs more than 4-byte alignment).  With
    ENABLE_LE_SIGNED_WRITE: remote_csrk[16] @60, remote_counter u32 @76,
    local_csrk[16] @80, local_counter u32 @96 = 100 bytes.  Other sizes: not decoded.
    """
    if len(v) not in (60, 100):
        return {"note": f"unexpected size {len(v)} (expected 60 or 100); not decoded"}
    seq, addr_type = struct.unpack_from("<Ii", v, 0)
    addr, irk, ltk = v[8:14], v[14:30], v[30:46]
    ediv = struct.unpack_from("<H", v, 46)[0]
    rand = v[48:56]
    d: dict[str, Any] = {
        "seq_nr": seq,
        "addr_type": ADDR_TYPES.get(addr_type, str(addr_type)),
        "address": ":".join(f"{b:02X}" for b in addr),
        "key_size": v[56],
        "authenticated": bool(v[57]),
        "authorized": bool(v[58]),
        "secure_connection": bool(v[59]),
        "irk_present": any(irk),
        "ltk_present": any(ltk),
        "signed_write": len(v) == 100,
    }
    if len(v) == 100:
        d["remote_csrk_present"] = any(v[60:76])
        d["remote_counter"] = struct.unpack_from("<I", v, 76)[0]
        d["local_csrk_present"] = any(v[80:96])
        d["local_counter"] = struct.unpack_from("<I", v, 96)[0]
    if show:
        d.update(irk=hexs(irk), ltk=hexs(ltk), ediv=ediv, rand=hexs(rand))
        if len(v) == 100:
            d.update(remote_csrk=hexs(v[60:76]), local_csrk=hexs(v[80:96]))
    return d


def decode_cccd(v: bytes) -> dict[str, Any]:
    """persistent_ccc_entry_t from att_server.c: seq_nr u32, att_handle u16, value u8,
    device_index u8 (8 bytes, little-endian)."""
    if len(v) != 8:
        return {"note": f"unexpected size {len(v)} (expected 8); not decoded"}
    seq, handle, value, dev = struct.unpack("<IHBB", v)
    flags = [n for bit, n in ((1, "notify"), (2, "indicate")) if value & bit]
    return {
        "seq_nr": seq,
        "att_handle": f"0x{handle:04x}",
        "value": value,
        "enabled": flags,
        "device_index": dev,
    }


def nimble_address(v: bytes) -> tuple[str, str]:
    """A NimBLE record's peer address: type u8 @0, address @1 (least significant first)."""
    return ADDR_TYPES.get(v[0], str(v[0])), ":".join(f"{b:02X}" for b in reversed(v[1:7]))


def decode_nimble_sec(v: bytes, show: bool) -> dict[str, Any]:
    """A NimBLE security record (spec/bond-store.md, "NimBLE records"): address @0,
    key_size @7, ediv u16 @8, rand u64 @10, flags @18 (ltk 1, irk 2, csrk 4,
    authenticated 8, sc 16), ltk[16] @19, irk[16] @35, csrk[16] @51, sign_counter
    u32 @67 = 71 bytes, little-endian."""
    if len(v) != 71:
        return {"note": f"unexpected size {len(v)} (expected 71); not decoded"}
    addr_type, address = nimble_address(v)
    flags = v[18]
    d: dict[str, Any] = {
        "addr_type": addr_type,
        "address": address,
        "key_size": v[7],
        "authenticated": bool(flags & 8),
        "secure_connection": bool(flags & 16),
        "ltk_present": bool(flags & 1),
        "irk_present": bool(flags & 2),
        "csrk_present": bool(flags & 4),
    }
    if show:
        ediv, rand = struct.unpack_from("<HQ", v, 8)
        d.update(ltk=hexs(v[19:35]), irk=hexs(v[35:51]), csrk=hexs(v[51:67]), ediv=ediv, rand=rand)
    return d


def decode_nimble_cccd(v: bytes) -> dict[str, Any]:
    """A NimBLE CCCD record: address @0, chr_val_handle u16 @7, flags u16 @9,
    value_changed u8 @11 = 12 bytes."""
    if len(v) != 12:
        return {"note": f"unexpected size {len(v)} (expected 12); not decoded"}
    addr_type, address = nimble_address(v)
    handle, value = struct.unpack_from("<HH", v, 7)
    return {
        "addr_type": addr_type,
        "address": address,
        "chr_val_handle": f"0x{handle:04x}",
        "value": value,
        "enabled": [n for bit, n in ((1, "notify"), (2, "indicate")) if value & bit],
        "value_changed": bool(v[11]),
    }


NIMBLE_KINDS = {
    b"NOS": "NimBLE security record (our keys) {}",
    b"NPS": "NimBLE security record (peer's keys) {}",
    b"NCC": "NimBLE CCCD record {}",
}


def describe(e: Entry, show: bool) -> dict[str, Any]:
    raw = e.tag.to_bytes(4, "big")
    d: dict[str, Any] = {
        "tag": tag_name(e.tag),
        "tag_hex": f"0x{e.tag:08x}",
        "length": len(e.value),
    }
    if raw[:3] == b"BTD":
        d["kind"] = f"le_device_db entry {raw[3]}"
        d["decoded"] = decode_device_db(e.value, show)
    elif raw[:3] == b"BTC":
        d["kind"] = f"gatt server CCCD entry {raw[3]}"
        d["decoded"] = decode_cccd(e.value)
    elif raw[:3] in NIMBLE_KINDS:
        d["kind"] = NIMBLE_KINDS[raw[:3]].format(raw[3])
        d["decoded"] = (
            decode_nimble_cccd(e.value) if raw[:3] == b"NCC" else decode_nimble_sec(e.value, show)
        )
    elif raw == b"NIRK":
        d["kind"] = "NimBLE: this device's IRK"
    elif raw == b"SMER":
        d["kind"] = "security manager ER (encryption root) key"
    elif raw == b"SMIR":
        d["kind"] = "security manager IR (identity root) key"
    elif raw == b"MPSA" and len(e.value) == 6:
        # Not a secret: the device's own identity, kept by the store glue.
        d["kind"] = "this device's random static address"
        d["decoded"] = {"address": ":".join(f"{b:02X}" for b in e.value)}
    else:
        d["kind"] = "unknown"
    if show:
        d["value_hex"] = hexs(e.value)
    return d


def report(p: Parsed, path: str, show: bool) -> dict[str, Any]:
    return {
        "file": path,
        "version": p.version,
        "generation": p.generation,
        "image_offset": p.offset,
        "file_size": p.size,
        "entries": [describe(e, show) for e in sorted(p.entries.values(), key=lambda e: e.tag)],
        "issues": p.issues,
    }


def print_text(r: dict[str, Any]) -> None:
    gen = r["generation"] if r["generation"] is not None else "?"
    print(
        f"{r['file']}: bond store, version {r['version']}, generation {gen}, "
        f"{r['file_size']} bytes, {len(r['entries'])} records"
    )
    for e in r["entries"]:
        print(f"  {e['tag']:<10} {e['kind']} ({e['length']} bytes)")
        for k, v in e.get("decoded", {}).items():
            print(f"      {k}: {v}")
        if "value_hex" in e:
            print(f"      value: {e['value_hex']}")
    if r["issues"]:
        print("issues:")
        for i in r["issues"]:
            print(f"  - {i}")
    else:
        print("no issues")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Inspect a MicroPython bond store file.")
    ap.add_argument("file")
    ap.add_argument("--show-keys", action="store_true", help="print key material")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--strict", action="store_true", help="exit 1 if any issue is found")
    args = ap.parse_args(argv)
    try:
        with open(args.file, "rb") as f:
            data = f.read()
        parsed = parse(data)
    except OSError as e:
        print(f"bondfile: {args.file}: {e.strerror or e}", file=sys.stderr)
        return 2
    except NotAStoreError as e:
        print(f"bondfile: {args.file}: {e}", file=sys.stderr)
        return 2
    r = report(parsed, args.file, args.show_keys)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print_text(r)
    return 1 if args.strict and r["issues"] else 0


if __name__ == "__main__":
    sys.exit(main())
