"""Read the btsnoop HCI traces the radio writes (``--trace DIR``), per connection.

A trace holds one controller's HCI traffic (H4 packets, both directions)
across every boot of its host.  :func:`connections` splits it at each LE
Connection Complete and tells, for each connection, when it came up, when it
was encrypted, and how many SMP Pairing Requests crossed it: the radio's own
evidence of whether a reconnection paired again.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

HEADER = b"btsnoop\x00"
H4_ACL, H4_EVENT = 0x02, 0x04
EVENT_LE_META, EVENT_ENCRYPTION_CHANGE = 0x3E, 0x08
LE_CONNECTION_COMPLETE, LE_ENHANCED_CONNECTION_COMPLETE = 0x01, 0x0A
SMP_CID, SMP_PAIRING_REQUEST = 0x0006, 0x01


@dataclass
class Connection:
    """One LE connection as one controller's trace shows it."""

    handle: int
    up_s: float  # trace time of the connection complete event
    encrypted_s: float | None = None  # first successful Encryption Change
    pairing_requests: int = 0


def packets(path: Path) -> list[tuple[float, bytes]]:
    """(seconds, H4 packet) of every record, in order."""
    data = path.read_bytes()
    if data[:8] != HEADER:
        raise ValueError(f"{path}: not a btsnoop file")
    out, pos = [], 16
    while pos + 24 <= len(data):
        _, included, _, _, micros = struct.unpack_from(">IIIIq", data, pos)
        pos += 24
        out.append((micros / 1e6, data[pos : pos + included]))
        pos += included
    return out


def connections(path: Path) -> list[Connection]:
    """The trace's LE connections in order, with their encryption and pairing."""
    conns: list[Connection] = []
    by_handle: dict[int, Connection] = {}
    for t, p in packets(path):
        if len(p) >= 6 and p[0] == H4_EVENT and p[1] == EVENT_LE_META:
            sub, status = p[3], p[4]
            if sub in (LE_CONNECTION_COMPLETE, LE_ENHANCED_CONNECTION_COMPLETE) and status == 0:
                conn = Connection(struct.unpack_from("<H", p, 5)[0] & 0x0FFF, t)
                conns.append(conn)
                by_handle[conn.handle] = conn
        elif len(p) >= 7 and p[0] == H4_EVENT and p[1] == EVENT_ENCRYPTION_CHANGE:
            status, handle, enabled = p[3], struct.unpack_from("<H", p, 4)[0] & 0x0FFF, p[6]
            conn = by_handle.get(handle)
            if conn and status == 0 and enabled and conn.encrypted_s is None:
                conn.encrypted_s = t
        elif len(p) >= 10 and p[0] == H4_ACL:
            handle = struct.unpack_from("<H", p, 1)[0] & 0x0FFF
            cid, code = struct.unpack_from("<H", p, 7)[0], p[9]
            conn = by_handle.get(handle)
            if conn and cid == SMP_CID and code == SMP_PAIRING_REQUEST:
                conn.pairing_requests += 1
    return conns
