#!/usr/bin/env python3
"""Inspect a MicroPython BTstack bond store file (spec/bond-store.md).

Usage: python tools/bondfile.py FILE [--show-keys] [--json] [--strict]

Lists the live entries with their tags decoded ('BTD'+i: le_device_db entry i,
'SMER'/'SMIR': the stack's ER/IR root keys, 'BTC'+i: persistent CCCD entry i) and
reports what the firmware's loader would recover (torn tail, torn records, superseded
duplicates, corruption, an unfinished compaction).  Key material (IRK, LTK, EDIV/Rand,
CSRKs, ER/IR, unknown values) is only printed with --show-keys.  Works on the main file
and on a side (snapshot) file.  Standard library only.

Exit status: 0 parsed (issues are reported), 1 with --strict if there are issues,
2 if FILE is not a bond store (or is unreadable / of an unsupported version).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from dataclasses import dataclass, field
from typing import Any

MAIN_MAGIC = b"MPTLVDB\x1a"
SIDE_MAGIC = b"MPTLVSN\x1a"
VERSION = 1
HEADER_LEN = 24
SIDE_HEADER_LEN = 32
SLOT_HEADER_LEN = 8
SLOT_MARKER = 0xA5
REC_TYPE_TLV = 0x01
REC_HEADER_LEN = 12
REC_OVERHEAD = 16
CAP_MIN, CAP_MAX = 16, 16 + 255

ADDR_TYPES = {
    0: "public",
    1: "random",
    2: "public-identity",
    3: "random-identity",
    0xFC: "sco",
    0xFD: "acl",
    0xFE: "unknown",
}


class NotAStoreError(Exception):
    pass


@dataclass
class Entry:
    tag: int
    seq: int
    slot: int
    value: bytes


@dataclass
class Parsed:
    kind: str  # "main" or "side"
    version: int | None
    generation: int | None
    size: int
    header_ok: bool
    entries: dict[int, Entry] = field(default_factory=dict)
    issues: list[str] = field(default_factory=list)
    free_slots: int = 0


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def slot_header_valid(b: bytes, off: int) -> bool:
    if off + SLOT_HEADER_LEN > len(b) or b[off] != SLOT_MARKER or b[off + 1] != 0:
        return False
    cap = struct.unpack_from("<H", b, off + 2)[0]
    if not CAP_MIN <= cap <= CAP_MAX:
        return False
    return struct.unpack_from("<I", b, off + 4)[0] == crc32(b[off : off + 4])


def parse_slots(img: bytes, out: Parsed) -> None:
    """Walk slots exactly like the firmware loader (spec section 'Loading')."""
    p = HEADER_LEN
    while p < len(img):
        if not slot_header_valid(img, p):
            if p + SLOT_HEADER_LEN <= len(img):
                nxt = next(
                    (q for q in range(p + 1, len(img) - 7) if slot_header_valid(img, q)), None
                )
                if nxt is not None:
                    out.issues.append(f"corrupt data: {nxt - p} bytes at offset {p} skipped")
                    p = nxt
                    continue
            out.issues.append(f"torn tail: {len(img) - p} bytes at offset {p} (dropped on load)")
            break
        cap = struct.unpack_from("<H", img, p + 2)[0]
        if p + SLOT_HEADER_LEN + cap > len(img):
            out.issues.append(f"torn tail: {len(img) - p} bytes at offset {p} (dropped on load)")
            break
        rec = img[p + SLOT_HEADER_LEN : p + SLOT_HEADER_LEN + cap]
        parse_record(rec, p, out)
        p += SLOT_HEADER_LEN + cap


def parse_record(rec: bytes, slot: int, out: Parsed) -> None:
    vlen = struct.unpack_from("<H", rec, 2)[0]
    valid = (
        rec[0] == REC_TYPE_TLV
        and rec[1] == 0
        and REC_OVERHEAD + vlen <= len(rec)
        and struct.unpack_from("<I", rec, REC_HEADER_LEN + vlen)[0]
        == crc32(rec[: REC_HEADER_LEN + vlen])
    )
    if not valid:
        out.free_slots += 1
        if any(rec):
            out.issues.append(f"torn/corrupt record in slot at offset {slot} (scrubbed on load)")
        return
    if any(rec[REC_OVERHEAD + vlen :]):
        out.issues.append(f"non-zero bytes after record in slot at offset {slot}")
    t, seq = struct.unpack_from("<II", rec, 4)
    value = rec[REC_HEADER_LEN : REC_HEADER_LEN + vlen]
    old = out.entries.get(t)
    if old is not None:
        out.issues.append(
            f"superseded copy of {tag_name(t)} (interrupted replace, scrubbed on load)"
        )
        if seq <= old.seq:
            return
    out.entries[t] = Entry(t, seq, slot, value)


def parse(data: bytes) -> Parsed:
    if data[:8] == SIDE_MAGIC:
        return parse_side(data)
    if data[:8] != MAIN_MAGIC:
        if len(data) >= HEADER_LEN and slot_header_valid(data, HEADER_LEN):
            out = Parsed("main", None, None, len(data), False)
            out.issues.append("main header corrupt (entries salvaged, file rewritten on load)")
            parse_slots(data, out)
            return out
        raise NotAStoreError("not a bond store file (bad magic)")
    if len(data) < HEADER_LEN:
        raise NotAStoreError("truncated header")
    version, hlen, gen = struct.unpack_from("<HHI", data, 8)
    header_ok = struct.unpack_from("<I", data, 20)[0] == crc32(data[:20])
    if header_ok and version != VERSION:
        raise NotAStoreError(f"unsupported format version {version}")
    out = Parsed("main", version, gen if header_ok else None, len(data), header_ok)
    if not header_ok:
        out.issues.append("main header corrupt (entries salvaged, file rewritten on load)")
    parse_slots(data, out)
    return out


def parse_side(data: bytes) -> Parsed:
    if len(data) < SIDE_HEADER_LEN:
        raise NotAStoreError("truncated side file header")
    version, hlen, gen, img_len, img_crc = struct.unpack_from("<HHIII", data, 8)
    if struct.unpack_from("<I", data, 28)[0] != crc32(data[:28]) or version != VERSION:
        raise NotAStoreError("side file header corrupt or unsupported version")
    img = data[SIDE_HEADER_LEN : SIDE_HEADER_LEN + img_len]
    out = Parsed("side", version, gen, len(data), True)
    if len(img) != img_len or crc32(img) != img_crc:
        out.issues.append("side file incomplete/corrupt: it is ignored and removed on load")
    out.issues.append(
        "side file present: a compaction was interrupted; the loader replays it only if its "
        f"generation ({gen}) is newer than the main file's"
    )
    parse_slots(img, out)
    return out


def tag_name(t: int) -> str:
    raw = t.to_bytes(4, "big")
    if raw[:3] in (b"BTD", b"BTC"):
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


def describe(e: Entry, show: bool) -> dict[str, Any]:
    raw = e.tag.to_bytes(4, "big")
    d: dict[str, Any] = {
        "tag": tag_name(e.tag),
        "tag_hex": f"0x{e.tag:08x}",
        "length": len(e.value),
        "seq": e.seq,
        "slot_offset": e.slot,
    }
    if raw[:3] == b"BTD":
        d["kind"] = f"le_device_db entry {raw[3]}"
        d["decoded"] = decode_device_db(e.value, show)
    elif raw[:3] == b"BTC":
        d["kind"] = f"gatt server CCCD entry {raw[3]}"
        d["decoded"] = decode_cccd(e.value)
    elif raw == b"SMER":
        d["kind"] = "security manager ER (encryption root) key"
    elif raw == b"SMIR":
        d["kind"] = "security manager IR (identity root) key"
    elif raw == b"MPSA" and len(e.value) == 6:
        # Not a secret: the device's own identity, kept by btstack_bond_store.c.
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
        "format": p.kind,
        "version": p.version,
        "generation": p.generation,
        "file_size": p.size,
        "header_ok": p.header_ok,
        "free_slots": p.free_slots,
        "entries": [describe(e, show) for e in sorted(p.entries.values(), key=lambda e: e.tag)],
        "issues": p.issues,
    }


def print_text(r: dict[str, Any]) -> None:
    gen = r["generation"] if r["generation"] is not None else "?"
    print(
        f"{r['file']}: bond store ({r['format']} file), version {r['version']}, "
        f"generation {gen}, {r['file_size']} bytes, {len(r['entries'])} entries, "
        f"{r['free_slots']} free slots"
    )
    for e in r["entries"]:
        print(f"  {e['tag']:<10} {e['kind']} ({e['length']} bytes, seq {e['seq']})")
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
    ap = argparse.ArgumentParser(description="Inspect a MicroPython BTstack bond store file.")
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
