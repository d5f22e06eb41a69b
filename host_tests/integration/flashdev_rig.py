"""The flashdev rig: our BTstack firmware on a simulated NOR flash, and Bumble peers.

The unix BTstack firmware runs ``flashdev/flash_agent.py``: it mounts an
image file through :mod:`flashdev` (a block device with erase/program
counters, rp2-like servicing of scheduled work and power cuts) at ``/flash``,
points ``ble.config(bond_file="/flash/bonds")`` at it and is then driven line
by line, as ``bumble_peer/agent.py`` is.  On the same virtual radio, any
number of in-process Bumble peers (each with its own controller, random
static address and JSON key store) pair with it, re-encrypt, subscribe to its
characteristic.

:func:`make_image` formats an image with the firmware itself
(``vfs.VfsLfs2.mkfs`` / ``vfs.VfsFat.mkfs``); :func:`flash_rig` gives a
:class:`FlashRig`; :class:`Session` is one boot of the device with the steps
a scenario is made of.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ble_agent import BleAgent
from bumble import core, hci
from bumble.device import Connection, Device, Peer
from bumble.keys import JsonKeyStore
from vradio.instance import InstanceError, LineInstance
from vradio.micropython import address_to_micropython
from vradio.peer import ConnectionLog, SecurityLog, connect, disconnect, use_just_works
from vradio.radio import VirtualRadio

from mpoverlay.build import unix_binary

FIRMWARE = unix_binary("btstack")
FLASHDEV_DIR = Path(__file__).parent / "flashdev"
AGENT_SCRIPT = FLASHDEV_DIR / "flash_agent.py"
CHAR_UUID = core.UUID("6e400003-b5a3-f393-e0a9-e50e24dcca9e")
LINK_TIMEOUT_S = 5.0
MKFS_TIMEOUT_S = 60.0
CUT_RE = r"FLASHDEV CUT (\d+)"
# Index of the peer that checks "a fresh peer can pair" (never bonded before).
FRESH_PEER = 99


@dataclass(frozen=True)
class FsSpec:
    """A filesystem image: littlefs2 (rp2's layout: progsize 256) or FAT."""

    fs: str  # "lfs2" or "fat"
    block_size: int = 4096
    block_count: int = 64

    @property
    def size(self) -> int:
        return self.block_size * self.block_count


LFS2 = FsSpec("lfs2", 4096, 64)
FAT = FsSpec("fat", 4096, 128)
FILESYSTEMS = {"lfs2": LFS2, "fat": FAT}

MKFS = """\
import sys
sys.path.append({dir!r})
import vfs
from flashdev import FlashDev
dev = FlashDev({image!r}, {block_size})
if {fs!r} == "fat":
    vfs.VfsFat.mkfs(dev)
else:
    vfs.VfsLfs2.mkfs(dev, progsize=256)
print("MKFS", dev.stats()["ops"])
"""


def make_image(path: Path, spec: FsSpec) -> None:
    """An erased image of ``spec``'s size, formatted by the firmware."""
    path.write_bytes(b"\xff" * spec.size)
    code = MKFS.format(
        dir=str(FLASHDEV_DIR), image=str(path), block_size=spec.block_size, fs=spec.fs
    )
    out = subprocess.run(
        [str(FIRMWARE), "-c", code], capture_output=True, text=True, timeout=MKFS_TIMEOUT_S
    )
    if out.returncode != 0 or "MKFS" not in out.stdout:
        raise RuntimeError(f"mkfs {spec.fs} failed: {out.stdout}{out.stderr}")


@dataclass
class AgentConfig:
    """What flash_agent.py boots with (written as JSON next to the image)."""

    image: str
    fs: str = "lfs2"
    block_size: int = 4096
    cut_at: int = 0  # the N-th program/erase of this boot is torn; 0: never
    cut_keep: int = -1  # bytes of the torn operation that land; -1: half
    service_us: int = -1  # run scheduled work in every device call; -1: off
    stats_path: str = ""
    stack: str = "btstack"  # the firmware that boots (not read by flash_agent.py)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path


@dataclass(frozen=True)
class LogCheck:
    """``readlog``: lines in /flash/log.txt, the first malformed one (-1: none),
    and this boot's appends and append errors."""

    lines: int
    first_bad: int
    appended: int
    errors: int


class FlashAgent(BleAgent):
    """One boot of the device: flash_agent.py on the firmware."""

    @classmethod
    async def boot_flash(cls, uart: str, home: Path, name: str, config: AgentConfig) -> FlashAgent:
        config_file = config.write(home / f"{name}.json")
        env = {
            "MICROPYBTUART": uart,
            "HOME": str(home),
            "PATH": "/usr/bin:/bin",
            "MICROPYPATH": f"{FLASHDEV_DIR}:.frozen",
        }
        firmware = unix_binary(config.stack)
        instance = LineInstance([firmware, AGENT_SCRIPT, config_file], env, home, name)
        agent = cls(instance)
        await instance.start()
        try:
            await instance.expect("READY", 10.0)
        except BaseException:
            # A cut during the boot itself (ER/IR) ends here too.
            if agent.cut_index() is None:
                await instance.kill()
                raise
        return agent

    def mounted(self) -> bool:
        return bool(self.instance.seen(r"MOUNTED \S+"))

    def cut_index(self) -> int | None:
        cuts = self.instance.seen(CUT_RE)
        return int(cuts[0][1]) if cuts else None

    def line_index(self, pattern: str) -> int | None:
        """Index of the first output line matching ``pattern``."""
        regex = re.compile(pattern)
        for i, line in enumerate(self.instance.lines):
            if regex.fullmatch(line):
                return i
        return None

    def tracebacks(self) -> list[str]:
        """Output lines that show an exception escaped somewhere (IRQ, scheduler...)."""
        lines = self.instance.lines + self.instance.stderr_lines
        return [line for line in lines if "Traceback" in line or line.startswith("LOGERR")]

    async def activate_flash(self) -> hci.Address:
        """LE Secure Connections Just Works bonding, BLE on, our service; our address."""
        address = await self.activate(sc=True)
        await self.run("gatts")
        return address

    async def unpair(self, address: hci.Address) -> None:
        addr_type, addr = address_to_micropython(address)
        await self.run(f"unpair {addr_type} {addr}")

    async def stats(self) -> dict[str, Any]:
        await self.instance.send("stats")
        match = await self.instance.expect(r"STATS (\{.*\})")
        await self.instance.expect("OK stats")
        return json.loads(match[1])

    async def read_file(self, path: str) -> bytes | None:
        """The bytes of a file on the device (None if it cannot be read)."""
        await self.instance.send(f"dump {path}")
        match = await self.instance.expect(r"FILE (\S+)", 20.0)
        await self.instance.expect("OK dump")
        return None if match[1] == "-" else bytes.fromhex(match[1])

    async def log(self, period_ms: int) -> None:
        await self.run(f"log {period_ms}")

    async def readlog(self) -> LogCheck:
        await self.instance.send("readlog")
        match = await self.instance.expect(r"LOG (-?\d+) (-?\d+) (\d+) (\d+)", 20.0)
        await self.instance.expect("OK readlog")
        return LogCheck(*(int(g) for g in match.groups()))


@dataclass
class PeerHandle:
    """One Bumble peer: its device, key store (a JSON file) and SMP log."""

    index: int
    device: Device
    keystore: JsonKeyStore
    keys_file: Path
    security: SecurityLog

    @property
    def address(self) -> hci.Address:
        return self.device.random_address


def peer_address(index: int) -> str:
    """Random static address of peer ``index`` (top bits 11)."""
    return f"C1:00:00:00:{index >> 8:02X}:{index & 0xFF:02X}"


@dataclass
class FlashRig:
    """Our device (a controller on a pty, an image) and Bumble peers on one radio."""

    radio: VirtualRadio
    uart: str
    home: Path
    keys_dir: Path
    peers: dict[int, PeerHandle] = field(default_factory=dict)
    agents: list[FlashAgent] = field(default_factory=list)

    async def peer(self, index: int) -> PeerHandle:
        """Peer ``index``, created on first use (its keys live in ``keys_dir``)."""
        if index not in self.peers:
            keys_file = self.keys_dir / f"peer{index}.json"
            keystore = JsonKeyStore(namespace="peer", filename=str(keys_file))
            controller = self.radio.add_controller(f"peer{index}", None)
            device = await self.radio.add_device(
                controller, f"peer{index}", peer_address(index), keystore=keystore
            )
            use_just_works(device, sc=True)
            self.peers[index] = PeerHandle(index, device, keystore, keys_file, SecurityLog(device))
        return self.peers[index]

    def peer_index(self, address: hci.Address) -> int | None:
        text = str(address).split("/")[0]
        for index in range(256):
            if peer_address(index) == text:
                return index
        return None

    async def boot(self, config: AgentConfig) -> FlashAgent:
        agent = await FlashAgent.boot_flash(
            self.uart, self.home, f"boot{len(self.agents)}", config
        )
        self.agents.append(agent)
        return agent


@contextlib.asynccontextmanager
async def flash_rig(workdir: Path, keys_dir: Path) -> AsyncIterator[FlashRig]:
    """A radio with our controller (no public address: a random static identity)."""
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    keys_dir.mkdir(parents=True, exist_ok=True)
    async with VirtualRadio() as radio:
        ours = radio.add_controller("ours", None)
        uart = radio.attach_pty(ours)
        the_rig = FlashRig(radio, uart, home, keys_dir)
        try:
            yield the_rig
        finally:
            for agent in the_rig.agents:
                await agent.power_cut()


@dataclass
class Link:
    handle: int
    log: ConnectionLog

    @property
    def connection(self) -> Connection:
        return self.log.connection


class Session:
    """One boot of the device on a rig, and the steps scenarios are made of.

    Our device is the peripheral; each peer connects as central and starts
    security (pairing, or re-encryption with the key it stored).
    """

    def __init__(self, rig: FlashRig, agent: FlashAgent, ours: hci.Address) -> None:
        self.rig = rig
        self.agent = agent
        self.ours = ours

    @classmethod
    async def start(cls, rig: FlashRig, config: AgentConfig) -> Session:
        agent = await rig.boot(config)
        if not agent.mounted():
            raise InstanceError(agent.instance.transcript("image did not mount"))
        return cls(rig, agent, await agent.activate_flash())

    async def link(self, peer: PeerHandle) -> Link:
        await self.agent.advertise()
        connection = await connect(peer.device, self.ours, public=False, timeout=LINK_TIMEOUT_S)
        handle, seen = await self.agent.wait_connection("CENTRAL_CONNECT")
        assert seen == peer.address, (seen, peer.address)
        return Link(handle, peer.security.of(connection))

    async def unlink(self, link: Link) -> None:
        await disconnect(link.log)
        assert await self.agent.wait_disconnection("CENTRAL_DISCONNECT") == link.handle

    async def pair(self, index: int) -> None:
        """Peer ``index`` pairs (anew, even if it has a bond) and disconnects."""
        peer = await self.rig.peer(index)
        link = await self.link(peer)
        await asyncio.wait_for(link.connection.pair(), LINK_TIMEOUT_S)
        await link.log.wait_event("pairing")
        encryption = await self.agent.wait_encryption()
        assert encryption.encrypted and encryption.bonded, encryption
        await self.unlink(link)

    async def reencrypt(self, index: int, then: str = "") -> bool:
        """Peer ``index`` reconnects and encrypts with its stored key.

        True when the link is encrypted on both sides without any pairing;
        ``then="subscribe"`` also subscribes to our characteristic (a CCCD
        write) on the encrypted link.
        """
        peer = await self.rig.peer(index)
        starts = peer.security.pairing_starts
        link = await self.link(peer)
        ok = False
        try:
            await asyncio.wait_for(link.connection.encrypt(), LINK_TIMEOUT_S)
            encryption = await self.agent.wait_encryption()
            ok = encryption.encrypted and link.connection.is_encrypted
        except (core.BaseBumbleError, hci.HCI_Error, InstanceError, TimeoutError):
            ok = False
        except asyncio.CancelledError:
            # Bumble aborts the wait when the link drops (our side may
            # disconnect after a failed encryption); a real cancel goes on.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            ok = False
        if ok and then == "subscribe":
            await subscribe(link.connection)
        ok = ok and peer.security.pairing_starts == starts
        await self.unlink(link)
        return ok

    async def unpair(self, index: int) -> None:
        await self.agent.unpair(hci.Address(peer_address(index)))

    async def bonds(self) -> list[hci.Address]:
        return [bond.address for bond in await self.agent.bonds()]

    async def settle(self, seconds: float = 0.3) -> None:
        """Give the device time for any write it does after an event."""
        await asyncio.sleep(seconds)


async def subscribe(connection: Connection) -> None:
    """Enable notifications on our characteristic (writes its CCCD)."""
    peer = Peer(connection)
    await peer.discover_services()
    for service in peer.services:
        await service.discover_characteristics()
    [characteristic] = peer.get_characteristics_by_uuid(CHAR_UUID)
    await peer.subscribe(characteristic, lambda _value: None)


async def run_until_cut(agent: FlashAgent, steps: Any) -> int | None:
    """Run the coroutine ``steps`` until it ends or the device reports a power cut.

    Returns the cut's operation index (then ``steps`` was cancelled, and any
    error it hit after the cut is ignored), or None when no cut happened.
    """
    task = asyncio.ensure_future(steps)
    while not task.done():
        if agent.cut_index() is not None:
            break
        await asyncio.wait({task}, timeout=0.02)
    cut = agent.cut_index()
    if cut is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        return cut
    task.result()
    return None
