"""The pty H4 path, including a host process going away and coming back."""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import sys
import termios
from pathlib import Path

from vradio.radio import VirtualRadio
from vradio_testlib import Runner, wait_until

H4_RESET = bytes.fromhex("01030c00")
H4_RESET_COMPLETE = bytes.fromhex("040e0401030c00")  # Command Complete, ncmd 1, status 0
H4_VENDOR_FC09 = bytes.fromhex("0109fc00")
H4_VENDOR_COMPLETE = bytes.fromhex("040e040109fc01")  # status 0x01 Unknown HCI Command

# A separate process playing a freshly started host: reset, print the reply.
HOST_SCRIPT = """
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
os.write(fd, bytes.fromhex("01030c00"))
reply = b""
deadline = time.monotonic() + 5
while len(reply) < 7 and time.monotonic() < deadline:
    reply += os.read(fd, 7 - len(reply))
print(reply.hex())
"""


async def read_exactly(fd: int, count: int, timeout: float = 2.0) -> bytes:
    """Read ``count`` bytes from a non-blocking fd without blocking the loop."""
    data = b""

    async def pump() -> None:
        nonlocal data
        while len(data) < count:
            try:
                data += os.read(fd, count - len(data))
            except BlockingIOError:
                await asyncio.sleep(0.005)

    await asyncio.wait_for(pump(), timeout)
    return data


def queued(fd: int) -> int:
    """Bytes waiting to be read on ``fd``."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def open_host_side(path: str) -> int:
    # Deliberately no termios set-up: the bridge must have left the tty raw.
    return os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)


def test_h4_over_pty_survives_host_restarts(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            controller = radio.add_controller("hci0")
            link = tmp_path / "hci0"
            pty_path = radio.attach_pty(controller, link)
            bridge = radio.bridges["hci0"]
            assert os.path.realpath(link) == pty_path

            # First "host": reset and a vendor command, then leave a reply unread.
            fd = open_host_side(str(link))
            assert not termios.tcgetattr(fd)[3] & termios.ECHO
            os.write(fd, H4_RESET)
            assert await read_exactly(fd, 7) == H4_RESET_COMPLETE
            os.write(fd, H4_VENDOR_FC09)
            assert await read_exactly(fd, 7) == H4_VENDOR_COMPLETE
            os.write(fd, H4_RESET)
            await wait_until(lambda: queued(fd) >= len(H4_RESET_COMPLETE))  # reply left unread
            os.write(fd, H4_RESET[:2])  # and the host dies mid-packet
            os.close(fd)
            await wait_until(lambda: not bridge.attached)

            # Second "host" on the same path: no stale bytes, no framing damage.
            fd = open_host_side(str(link))
            os.write(fd, H4_RESET)
            assert await read_exactly(fd, 7) == H4_RESET_COMPLETE
            # Anything stale would come before the next reply, not after it.
            os.write(fd, H4_VENDOR_FC09)
            assert await read_exactly(fd, 7) == H4_VENDOR_COMPLETE
            assert queued(fd) == 0
            os.close(fd)
            await wait_until(lambda: not bridge.attached)

            # Third host: a real separate process.
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", HOST_SCRIPT, str(link), stdout=asyncio.subprocess.PIPE
            )
            stdout, _ = await asyncio.wait_for(process.communicate(), 5.0)
            assert stdout.decode().strip() == H4_RESET_COMPLETE.hex()
            assert process.returncode == 0
            assert bridge.attach_count == 3
        assert not link.exists()  # symlink removed on close

    run(scenario())
