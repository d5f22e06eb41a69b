"""The bond store in the real firmware, on a flash image, when things go wrong.

* A ``bond_file`` that is not a bond store is never written; BLE still bonds (in RAM).
* ``gap_unpair()`` on a completely full littlefs is durable (the reserve file).
* A Ctrl-C delivered inside a bond-file write (as rp2's flash delivers pending
  events) reaches the application, and the write is retried.
* A relative ``bond_file`` is made absolute when configured.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Coroutine
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


def test_a_foreign_bond_file_is_never_written(built_tree: Path, tmp_path: Path) -> None:
    foreign = b"print('my own boot script')\n" * 3

    async def scenario() -> None:
        image = tmp_path / "image.bin"
        make_image(image, LFS2)
        async with flash_rig(tmp_path / "run", tmp_path / "keys") as rig:
            session = await boot(rig, image)
            await session.agent.run("active 0")
            await session.agent.run(f"write {BOND_FILE} {foreign.hex()}")
            await session.agent.run("active 1")
            await session.agent.run("gatts")
            await session.pair(0)  # bonding works, in RAM
            assert len(await session.bonds()) == 1
            await session.agent.run("active 0")
            assert await session.agent.read_file(BOND_FILE) == foreign
            said = session.agent.instance.stderr_lines
            assert any("is not a bond store: left untouched" in line for line in said), said
            assert session.agent.tracebacks() == []

    run(scenario())


def test_unpair_on_a_full_littlefs_is_durable(built_tree: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        image = tmp_path / "image.bin"
        make_image(image, LFS2)
        async with flash_rig(tmp_path / "run", tmp_path / "keys") as rig:
            session = await boot(rig, image)
            await session.pair(0)
            await session.pair(1)
            assert await session.agent.read_file(BOND_FILE + ".rsv") is not None
            await session.agent.run("fill")
            [gone, kept] = await session.bonds()
            await session.agent.unpair(gone)
            assert await session.bonds() == [kept]
            # Copy on write: the rewrite took the reserve's block.
            assert await session.agent.read_file(BOND_FILE + ".rsv") is None
            await session.agent.power_cut()
            after = await boot(rig, image)
            assert await after.bonds() == [kept]
            entries = parse(await after.agent.read_file(BOND_FILE)).entries
            assert sum(t >> 8 == int.from_bytes(b"BTD", "big") for t in entries) == 1

    run(scenario())


def test_ctrl_c_inside_a_bond_file_write_reaches_the_application(
    built_tree: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        image = tmp_path / "image.bin"
        make_image(image, LFS2)
        async with flash_rig(tmp_path / "run", tmp_path / "keys") as rig:
            session = await boot(rig, image)
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
