"""The demo's story comes from the test's lines and the radio's trace."""

from __future__ import annotations

import struct
from pathlib import Path

from vradio.btsnoop import connections

from mpoverlay import demo
from mpoverlay.multitest import Result


def record(t_us: int, packet: bytes, received: bool) -> bytes:
    flags = 1 if received else 0
    return struct.pack(">IIIIq", len(packet), len(packet), flags, 0, t_us) + packet


def conn_complete(handle: int) -> bytes:
    return bytes([0x04, 0x3E, 19, 0x01, 0x00]) + struct.pack("<H", handle) + bytes(16)


def encryption_change(handle: int) -> bytes:
    return bytes([0x04, 0x08, 4, 0x00]) + struct.pack("<H", handle) + bytes([1])


def pairing_request(handle: int) -> bytes:
    smp = bytes([0x01, 0x03, 0x00, 0x01, 0x10, 0x07, 0x07])
    l2cap = struct.pack("<HH", len(smp), 0x0006) + smp
    return bytes([0x02]) + struct.pack("<HH", handle, len(l2cap)) + l2cap


def trace(path: Path, pair_again: bool) -> Path:
    records = [record(0, conn_complete(1), True)]
    records += [
        record(1_000, pairing_request(1), True),
        record(200_000, encryption_change(1), True),
    ]
    for i, handle in enumerate((2, 3, 4), 1):
        t = i * 1_000_000
        records.append(record(t, conn_complete(handle), True))
        if pair_again and handle == 3:
            records.append(record(t + 1_000, pairing_request(handle), True))
        records.append(record(t + 20_000, encryption_change(handle), True))
    path.write_bytes(b"btsnoop\x00" + struct.pack(">II", 1, 1002) + b"".join(records))
    return path


OUTPUT = (
    "### TEST ###\n--- instance0 ---\n"
    + "".join(
        f"phase {p} encryption (1, 0, 1)\nphase {p} secrets written {p == 'pair'}\n"
        f"phase {p} same address True\n"
        for p in ("pair", "active", "hard", "soft")
    )
    + "--- instance1 ---\nphase pair encryption (1, 0, 1)\n"
)


def test_trace_is_split_per_connection(tmp_path: Path) -> None:
    conns = connections(trace(tmp_path / "hci0.btsnoop", pair_again=False))
    assert [c.handle for c in conns] == [1, 2, 3, 4]
    assert [c.pairing_requests for c in conns] == [1, 0, 0, 0]
    assert conns[0].encrypted_s is not None
    assert abs(conns[0].encrypted_s - conns[0].up_s - 0.2) < 1e-9


def test_every_step_is_told_with_the_radios_evidence(tmp_path: Path) -> None:
    result = Result(demo.TEST, "pass", 1.0, OUTPUT)
    steps = demo.steps(result, trace(tmp_path / "hci0.btsnoop", pair_again=False))
    texts = [demo.describe(s, first=i == 0) for i, s in enumerate(steps)]
    assert texts[0].startswith("ok (legacy pairing") and "1 Pairing Request(s)" in texts[0]
    assert all(t.startswith("re-encrypted with the stored key, no pairing") for t in texts[1:])
    assert "200 ms to encryption" in texts[0]


def test_a_pairing_the_test_did_not_notice_still_fails_the_step(tmp_path: Path) -> None:
    # The test's lines say all is well; the radio saw a Pairing Request.
    result = Result(demo.TEST, "pass", 1.0, OUTPUT)
    steps = demo.steps(result, trace(tmp_path / "hci0.btsnoop", pair_again=True))
    assert demo.describe(steps[2], first=False).startswith("FAILED")
    assert not demo.describe(steps[1], first=False).startswith("FAILED")


def test_no_trace_is_no_evidence(tmp_path: Path) -> None:
    result = Result(demo.TEST, "pass", 1.0, OUTPUT)
    [first, *_] = demo.steps(result, tmp_path / "missing.btsnoop")
    assert demo.describe(first, first=True).startswith("FAILED")
