"""Test-side client of bumble_peer/agent.py, the MicroPython BLE agent.

One :class:`BleAgent` is one boot of the device under test: the unix BTstack
or NimBLE firmware running the agent on a virtual controller's pty, with a
HOME that persists across boots.  Its methods send the agent's commands and wait for
the lines it answers with (see the agent's header for the protocol).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bondfile import parse
from bumble import hci
from vradio.instance import InstanceError, LineInstance
from vradio.micropython import (
    address_from_micropython,
    address_to_micropython,
    bond_file,
    micropython_instance,
)

AGENT_SCRIPT = Path(__file__).parent / "bumble_peer" / "agent.py"
BOOT_TIMEOUT_S = 10.0  # generous: the machine may be busy with other builds
# The record that holds a bond, per stack (bondfile.py): BTstack's
# le_device_db entry ('BTD'+i), NimBLE's peer security record ('NPS'+i).
BOND_TAGS = {"btstack": b"BTD", "nimble": b"NPS"}


@dataclass(frozen=True)
class Bond:
    """One entry of ``ble.gap_bonds()``."""

    address: hci.Address
    authenticated: bool
    secure: bool


@dataclass(frozen=True)
class Encryption:
    """One ``_IRQ_ENCRYPTION_UPDATE``."""

    conn_handle: int
    encrypted: bool
    authenticated: bool
    bonded: bool
    key_size: int


class AgentError(InstanceError):
    """A command the agent answered with ERR (``exception`` and ``values`` as printed)."""

    def __init__(self, command: str, exception: str, args: list[str]) -> None:
        super().__init__(f"{command}: {exception} {' '.join(args)}")
        self.exception = exception
        self.values = args


class BleAgent:
    def __init__(self, instance: LineInstance) -> None:
        self.instance = instance

    @classmethod
    async def boot(cls, binary: Path, uart: str, home: Path, name: str) -> BleAgent:
        agent = cls(micropython_instance(binary, AGENT_SCRIPT, uart, home, name))
        await agent.instance.start()
        try:
            await agent.instance.expect("READY", BOOT_TIMEOUT_S)
        except BaseException:
            await agent.instance.kill()
            raise
        return agent

    async def power_cut(self) -> None:
        await self.instance.kill()

    async def run(self, line: str) -> None:
        """Send a command; raise :class:`AgentError` if the agent answers ERR."""
        word = line.split()[0]
        match = await self.instance.command(
            line, rf"(?:OK|ERR) {re.escape(word)}(?: (\S+)(.*))?", BOOT_TIMEOUT_S
        )
        if match[0].startswith("ERR"):
            raise AgentError(word, match[1], match[2].split())

    async def config(self, **values: object) -> None:
        await self.run("config " + " ".join(f"{key}={value}" for key, value in values.items()))

    async def activate(self, sc: bool) -> hci.Address:
        """Bonding with Just Works (``sc``: LE Secure Connections), BLE on; our address."""
        await self.config(bond=True, le_secure=sc, mitm=False)
        await self.run("active 1")
        return await self.address()

    async def address(self) -> hci.Address:
        await self.instance.send("addr")
        match = await self.instance.expect(r"ADDR (\d+) ([0-9a-f]{12})")
        await self.instance.expect("OK addr")
        return address_from_micropython(int(match[1]), match[2])

    async def advertise(self) -> None:
        await self.run("adv")

    async def connect(self, address: hci.Address) -> None:
        addr_type, addr = address_to_micropython(address)
        await self.run(f"connect {addr_type} {addr}")

    async def wait_connection(
        self, event: str, since: int | None = None
    ) -> tuple[int, hci.Address]:
        """Wait for CENTRAL_CONNECT or PERIPHERAL_CONNECT; (conn_handle, peer address).

        With ``since`` (an index into the output), an event printed from there
        on counts even if a command's reply was awaited after it (a connection
        can complete before the agent answers the ``connect`` command)."""
        pattern = rf"{event} (\d+) (\d+) ([0-9a-f]{{12}})"
        earlier = self.instance.seen(pattern, since) if since is not None else []
        match = earlier[0] if earlier else await self.instance.expect(pattern)
        return int(match[1]), address_from_micropython(int(match[2]), match[3])

    async def wait_disconnection(self, event: str) -> int:
        match = await self.instance.expect(rf"{event} (\d+) .*")
        return int(match[1])

    async def pair(self, conn_handle: int) -> None:
        await self.run(f"pair {conn_handle}")

    async def disconnect(self, conn_handle: int) -> None:
        await self.run(f"disconnect {conn_handle}")

    async def wait_encryption(self, timeout: float = 5.0) -> Encryption:
        match = await self.instance.expect(r"ENC (\d+) ([01]) ([01]) ([01]) (\d+)", timeout)
        handle, encrypted, authenticated, bonded, key_size = (int(g) for g in match.groups())
        return Encryption(handle, bool(encrypted), bool(authenticated), bool(bonded), key_size)

    async def bonds(self) -> list[Bond]:
        await self.instance.send("bonds")
        match = await self.instance.expect(r"BONDS (\d+)((?: \S+)*)")
        await self.instance.expect("OK bonds")
        bonds = []
        for entry in match[2].split():
            addr_type, addr, authenticated, secure = entry.split(",")
            address = address_from_micropython(int(addr_type), addr)
            bonds.append(Bond(address, authenticated == "1", secure == "1"))
        assert len(bonds) == int(match[1]), match[0]
        return bonds

    def secret_writes(self) -> list[tuple[int, bytes, int | None]]:
        """Every ``_IRQ_SET_SECRET`` so far: (type, key, value length or None for a delete)."""
        return [
            (int(m[1]), bytes.fromhex(m[2]), None if m[3] == "-" else int(m[3]))
            for m in self.instance.seen(r"SET_SECRET (\d+) ([0-9a-f]+) (\S+)")
        ]

    def encryption_updates(self) -> list[str]:
        return [m[0] for m in self.instance.seen(r"ENC .*")]


def bond_entries(home: Path, stack: str) -> dict[str, bytes]:
    """The bond file's bond records by tag name, e.g. 'BTD+15' (parsed by tools/bondfile.py)."""
    parsed = parse(bond_file(home, stack).read_bytes())
    entries = {}
    for entry in parsed.entries.values():
        raw = entry.tag.to_bytes(4, "big")
        if raw[:3] == BOND_TAGS[stack]:
            entries[f"{raw[:3].decode()}+{raw[3]}"] = entry.value
    assert not parsed.issues, parsed.issues
    return entries
