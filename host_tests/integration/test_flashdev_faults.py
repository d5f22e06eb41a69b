"""The bond store in the real firmware, on a flash image, when things go wrong.

* A ``bond_file`` that is not a bond store is never written; BLE still bonds (in RAM).
* ``gap_unpair()`` on a completely full littlefs is durable (the reserve file).
* A Ctrl-C delivered inside a bond-file write (as rp2's flash delivers pending
  events) reaches the application, and the write is retried.
* A relative ``bond_file`` is made absolute when configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import pytest
from bondfile import parse
from flashdev_rig import FIRMWARE, LFS2, AgentConfig, FlashRig, Session, flash_rig, make_image
from integration_support import NO_TREE_REASON, upstream_available
from vradio.micropython import address_to_micropython

pytestmark = pytest.mark.skipif(not upstream_available(), reason=NO_TREE_REASON)
BOND_FILE = "/flash/bonds"
TIMEOUT_S = 120.0


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, TIMEOUT_S))


async def boot(rig: FlashRig, image: Path) -> Session:
    return await Session.start(rig, AgentConfig(str(image), LFS2.fs, LFS2.block_size))


@contextlib.asynccontextmanager
async def booted(tmp_path: Path) -> AsyncIterator[tuple[FlashRig, Path, Session]]:
    """A fresh littlefs image, the rig, and the device booted on it."""
    image = tmp_path / "image.bin"
    make_image(image, LFS2)
    async with flash_rig(tmp_path / "run", tmp_path / "keys") as rig:
        yield rig, image, await boot(rig, image)


def test_a_foreign_bond_file_is_never_written(built_tree: Path, tmp_path: Path) -> None:
    foreign = b"print('my own boot script')\n" * 3

    async def scenario() -> None:
        async with booted(tmp_path) as (rig, image, session):
            await session.agent.run("active 0")
            await session.agent.run(f"write {BOND_FILE} {foreign.hex()}")
            # The kept identity is in the file it may not read: a new one.
            session = Session(rig, session.agent, await session.agent.activate_flash())
            await session.pair(0)  # bonding works, in RAM
            assert len(await session.bonds()) == 1
            await session.agent.run("active 0")
            assert await session.agent.read_file(BOND_FILE) == foreign
            said = session.agent.instance.stderr_lines
            assert any("is not a bond store: left untouched" in line for line in said), said
            assert session.agent.tracebacks() == []

    run(scenario())


@pytest.mark.parametrize("bonds", [2, 8])
def test_unpair_on_a_full_littlefs_is_durable(
    built_tree: Path, tmp_path: Path, bonds: int
) -> None:
    # littlefs keeps a file of up to 512 bytes (rp2's configuration) inline in
    # its directory, rewritten without a free block; a bigger one (from about
    # 7 bonds on) is copied on write, which a full filesystem cannot do.
    async def scenario() -> None:
        async with booted(tmp_path) as (rig, image, session):
            for index in range(bonds):
                await session.pair(index)
            size = len(await session.agent.read_file(BOND_FILE) or b"")
            assert (size > 512) == (bonds == 8), size
            assert await session.agent.read_file(BOND_FILE + ".rsv") is not None
            await session.agent.run("fill")
            [filled] = session.agent.instance.seen(r"FILLED .* free (\d+)")
            assert filled[1] == "0", filled[0]
            gone, *kept = await session.bonds()
            await session.agent.unpair(gone)
            assert await session.bonds() == kept
            # (Whether the rewrite took the reserve's block depends on where
            # littlefs's allocator stands; test_littlefs_needs_the_reserve shows
            # that it can have to.)
            await session.agent.power_cut()
            after = await boot(rig, image)
            assert await after.bonds() == kept
            entries = parse(await after.agent.read_file(BOND_FILE)).entries
            assert sum(t >> 8 == int.from_bytes(b"BTD", "big") for t in entries) == bonds - 1

    run(scenario())


LITTLEFS_FULL = """\
import vfs, os
class RAM:
    def __init__(self, n, bs=4096):
        self.bs = bs
        self.data = bytearray(b"\\xff" * n * bs)
    def readblocks(self, b, buf, off=0):
        o = b * self.bs + off
        buf[:] = self.data[o : o + len(buf)]
    def writeblocks(self, b, buf, off=0):
        o = b * self.bs + off
        self.data[o : o + len(buf)] = buf
    def ioctl(self, op, arg):
        if op == 4:
            return len(self.data) // self.bs
        if op == 5:
            return self.bs
        if op == 6:
            self.data[arg * self.bs : (arg + 1) * self.bs] = b"\\xff" * self.bs
        return 0
d = RAM(64)
vfs.VfsLfs2.mkfs(d)
vfs.mount(vfs.VfsLfs2(d, progsize=256), "/f")
def write(name, data, mode="wb"):
    try:
        with open(name, mode) as f:
            f.write(data)
        return True
    except OSError:
        return False
write("/f/bonds", b"a" * 633)
write("/f/bonds.rsv", bytes(4096))
n = 0
while write("/f/fill%d" % n, bytes(4096)):
    n += 1
while write("/f/fill0", bytes(4096), "ab"):
    pass
print("free", os.statvfs("/f")[3])
print("rewrite", write("/f/bonds", b"b" * 564, "w+b"))
os.remove("/f/bonds.rsv")
print("without reserve", write("/f/bonds", b"b" * 564, "w+b"))
"""


def test_littlefs_needs_the_reserve(built_tree: Path) -> None:
    # The firmware's littlefs, full: a bond file above its inline size (512
    # bytes) cannot be rewritten, even smaller, until the reserve is given up.
    out = subprocess.run(
        [str(FIRMWARE), "-c", LITTLEFS_FULL], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split("\n")[:3] == ["free 0", "rewrite False", "without reserve True"], (
        out.stdout + out.stderr
    )


def test_ctrl_c_inside_a_bond_file_write_reaches_the_application(
    built_tree: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with booted(tmp_path) as (rig, image, session):
            await session.pair(0)
            [peer] = await session.bonds()
            await session.agent.run("kbint")
            addr_type, addr = address_to_micropython(peer)
            await session.agent.instance.send(f"unpair {addr_type} {addr}")
            await session.agent.instance.expect("KBINT unpair", 10.0)
            # The failed write is retried (after a second) and then lands.
            await asyncio.sleep(2.0)
            await session.agent.power_cut()
            after = await boot(rig, image)
            assert await after.bonds() == []

    run(scenario())


def test_a_relative_bond_file_is_made_absolute(built_tree: Path, tmp_path: Path) -> None:
    script = (
        "import bluetooth, os\n"
        "b = bluetooth.BLE()\n"
        "b.config(bond_file='bonds.bin')\n"
        "os.chdir('/')\n"
        "print(b.config('bond_file'))\n"
    )
    out = subprocess.run(
        [str(FIRMWARE), "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert out.stdout.strip() == f"{tmp_path}/bonds.bin", out.stdout + out.stderr
