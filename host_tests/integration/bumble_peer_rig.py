"""The rig of test_bumble_peer.py: our firmware and a Bumble peer on one virtual radio.

:func:`rig` gives a :class:`Rig`: a controller on a pty for the unix BTstack
or NimBLE firmware (booted as often as a test likes, always with the same
HOME), and an
in-process bumble Device on a second controller with its own JSON key store,
its SMP events recorded (:class:`vradio.peer.SecurityLog`) and our
controller's HCI traffic kept (:class:`vradio.recorder.HciRecorder`).  The
``check_*`` helpers read the bond file with tools/bondfile.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from ble_agent import BleAgent, bond_entries
from bondfile import decode_device_db, decode_nimble_sec, parse
from bumble import crypto, hci
from bumble.device import Connection, Device
from bumble.keys import JsonKeyStore, PairingKeys
from vradio.micropython import bond_file
from vradio.peer import (
    ConnectionLog,
    SecurityLog,
    advertise_until_connected,
    connect,
    disconnect,
    own_address,
    use_just_works,
)
from vradio.radio import VirtualRadio
from vradio.recorder import HciRecorder

from mpoverlay.build import UNIX_VARIANTS, unix_binary

# Every stack the tooling builds (expected.toml's [bumble_peer] names each).
STACKS = UNIX_VARIANTS
OUR_PUBLIC = "28:CD:C1:00:00:01"
PEER_PUBLIC = "28:CD:C1:00:00:02"
PEER_STATIC = "C1:00:00:00:00:02"
CASE_TIMEOUT_S = 60.0  # each case takes a few seconds; this only stops a hang
LINK_TIMEOUT_S = 5.0
# BTstack's default IR when nothing is stored (sm.c, sm_er_ir_set_default).
BTSTACK_DEFAULT_IR = bytes(range(0x90, 0xA0))
SMIR_TAG = int.from_bytes(b"SMIR", "big")
NIRK_TAG = int.from_bytes(b"NIRK", "big")
# The agent's line for the _IRQ_SET_SECRET that completes a new bond: the
# device DB entry (TLV tag 'BTD'+i, 60 bytes), the peer's security record
# (type 2, keyed by its 7-byte address).
BOND_STORED = {
    "btstack": r"SET_SECRET 32 425444[0-9a-f]{2} 60",
    "nimble": r"SET_SECRET 2 [0-9a-f]{14} \d+",
}
# What a new bond writes to the secret handler: (type, key prefix).
BOND_SECRETS = {
    "btstack": [(32, b"BTD")],
    "nimble": [(1, b""), (2, b"")],
}
# _IRQ_ENCRYPTION_UPDATE's (encrypted, authenticated, bonded) when our
# central's stored keys are refused: BTstack still reports the bond it
# holds, NimBLE not.
REFUSED_KEYS = {
    "btstack": (False, False, True),
    "nimble": (False, False, False),
}


@dataclass
class Link:
    """One connection, seen from both ends."""

    handle: int  # our conn_handle
    peer: ConnectionLog  # Bumble's end

    @property
    def connection(self) -> Connection:
        return self.peer.connection


@dataclass
class Rig:
    """Our device (one controller on a pty, a HOME) and a Bumble peer on one radio."""

    radio: VirtualRadio
    uart: str
    home: Path
    peer: Device
    keystore: JsonKeyStore
    security: SecurityLog
    hci: HciRecorder  # our controller's traffic
    role: str
    public: bool
    stack: str
    agents: list[BleAgent] = field(default_factory=list)

    async def boot(self) -> BleAgent:
        firmware = unix_binary(self.stack)
        agent = await BleAgent.boot(firmware, self.uart, self.home, f"boot{len(self.agents)}")
        self.agents.append(agent)
        return agent

    @property
    def peer_address(self) -> hci.Address:
        return own_address(self.peer, self.public)

    async def link(self, agent: BleAgent, address: hci.Address) -> Link:
        """Connect our device (at ``address``) and the peer, in our role."""
        if self.role == "peripheral":
            await agent.advertise()
            connection = await connect(self.peer, address, self.public, LINK_TIMEOUT_S)
            handle, seen = await agent.wait_connection("CENTRAL_CONNECT")
        else:
            mark = len(agent.instance.lines)
            connection = await advertise_until_connected(
                self.peer, self.public, lambda: agent.connect(self.peer_address), LINK_TIMEOUT_S
            )
            handle, seen = await agent.wait_connection("PERIPHERAL_CONNECT", since=mark)
        assert seen == self.peer_address
        return Link(handle, self.security.of(connection))

    async def unlink(self, agent: BleAgent, link: Link) -> None:
        """The peer disconnects; wait until both ends have seen it."""
        await disconnect(link.peer)
        # Our side hears of it one connection event later.  BTstack would
        # answer a gap_connect() to the peer before that with the old link.
        event = "CENTRAL_DISCONNECT" if self.role == "peripheral" else "PERIPHERAL_DISCONNECT"
        assert await agent.wait_disconnection(event) == link.handle

    async def secure(self, agent: BleAgent, link: Link, bonded: bool) -> None:
        """Start security from the central: pair (``bonded=False``) or re-encrypt."""
        if self.role == "central":
            # gap_pair() re-encrypts with a stored bond, pairs otherwise.
            await agent.pair(link.handle)
        elif bonded:
            await asyncio.wait_for(link.connection.encrypt(), LINK_TIMEOUT_S)
        else:
            await asyncio.wait_for(link.connection.pair(), LINK_TIMEOUT_S)
        if not bonded:
            # Bumble has stored the keys once its pairing completes, which
            # may be after ours (our last key PDUs are still on their way).
            await link.peer.wait_event("pairing")

    async def peer_keys(self, our_identity: hci.Address) -> PairingKeys | None:
        return await self.keystore.get(str(our_identity))


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path, role: str, sc: bool, public: bool, stack: str = "btstack"
) -> AsyncIterator[Rig]:
    home = tmp_path / "home"
    home.mkdir()
    async with VirtualRadio(trace_dir=tmp_path / "trace") as radio:
        ours = radio.add_controller("ours", OUR_PUBLIC if public else None)
        uart = radio.attach_pty(ours)
        recorder = HciRecorder.install(ours)
        keystore = JsonKeyStore(namespace="peer", filename=str(tmp_path / "peer-keys.json"))
        peer_controller = radio.add_controller("peer", PEER_PUBLIC if public else None)
        peer = await radio.add_device(peer_controller, "peer", PEER_STATIC, keystore=keystore)
        use_just_works(peer, sc)
        the_rig = Rig(
            radio, uart, home, peer, keystore, SecurityLog(peer), recorder, role, public, stack
        )
        try:
            yield the_rig
        finally:
            for agent in the_rig.agents:
                await agent.power_cut()
                # Shown by pytest when the case fails.
                print(agent.instance.transcript())


def expected_irk(home: Path, stack: str) -> bytes:
    """Our IRK as sent over the air, from what the bond file keeps.

    NimBLE keeps the IRK itself ('NIRK').  BTstack keeps the IR ('SMIR') and
    derives IRK = d1(IR, 1, 0) = AES-128(IR, 0...01) (Core Vol 3 Part H
    2.4.2.1 and sm.c); bumble's ``crypto.e`` and the SMP PDU both use
    little-endian keys, BTstack's TLV the big-endian IR.
    """
    parsed = parse(bond_file(home, stack).read_bytes())
    if stack == "nimble":
        irk = parsed.entries[NIRK_TAG].value
        assert len(irk) == 16 and any(irk), irk.hex()
        return irk
    ir = parsed.entries[SMIR_TAG].value
    assert len(ir) == 16 and ir != BTSTACK_DEFAULT_IR, ir.hex()
    return crypto.e(ir[::-1], (1).to_bytes(16, "little"))


def check_bond_entry(home: Path, stack: str, peer: hci.Address, sc: bool) -> bytes:
    """The bond file holds exactly one bond record, for ``peer``; its raw value."""
    entries = bond_entries(home, stack)
    assert len(entries) == 1, entries
    [value] = entries.values()
    decoded = (
        decode_nimble_sec(value, False) if stack == "nimble" else decode_device_db(value, False)
    )
    assert decoded["address"] == str(peer).split("/")[0]
    assert decoded["addr_type"] == ("public" if peer.is_public else "random")
    assert decoded["secure_connection"] == sc
    assert decoded["ltk_present"]
    return value


def check_peer_keys(keys: PairingKeys | None, sc: bool) -> PairingKeys:
    """Bumble kept the bond: with SC one LTK, with legacy pairing one per direction."""
    assert keys is not None
    if sc:
        assert keys.ltk is not None and keys.ltk_central is None
    else:
        assert keys.ltk is None and keys.ltk_central is not None
    assert keys.irk is not None
    return keys


def ltks(keys: PairingKeys) -> list[bytes | None]:
    return [
        key.value if key else None for key in (keys.ltk, keys.ltk_central, keys.ltk_peripheral)
    ]
