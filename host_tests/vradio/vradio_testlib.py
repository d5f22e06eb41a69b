"""Helpers shared by the virtual radio tests (imported as a plain module)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bumble import hci
from bumble.snoop import Snooper
from vradio.controller import VirtualController

Runner = Callable[..., Any]


class EventRecorder(Snooper):
    """Snooper keeping every controller-to-host packet, parsed, for assertions."""

    def __init__(self) -> None:
        self.packets: list[hci.HCI_Packet] = []

    def snoop(self, hci_packet: bytes, direction: Snooper.Direction) -> None:
        if direction == Snooper.Direction.CONTROLLER_TO_HOST:
            self.packets.append(hci.HCI_Packet.from_bytes(hci_packet))

    def advertising_reports(self) -> list[Any]:
        """All legacy and extended advertising reports, flattened."""
        reports: list[Any] = []
        for packet in self.packets:
            if isinstance(
                packet,
                hci.HCI_LE_Advertising_Report_Event | hci.HCI_LE_Extended_Advertising_Report_Event,
            ):
                reports.extend(packet.reports)
        return reports


class RawHost:
    """Minimal in-process H4-less host: sends commands, collects events."""

    def __init__(self, controller: VirtualController) -> None:
        self.controller = controller
        self.events: asyncio.Queue[hci.HCI_Packet] = asyncio.Queue()
        controller.host = self

    def on_packet(self, packet: bytes) -> None:
        self.events.put_nowait(hci.HCI_Packet.from_bytes(packet))

    def send(self, command: hci.HCI_Command | bytes) -> None:
        self.controller.on_packet(bytes(command))

    async def next_event(self, timeout: float = 2.0) -> hci.HCI_Packet:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def command(self, command: hci.HCI_Command | bytes) -> hci.HCI_Packet:
        """Send a command and return its Command Complete / Command Status."""
        self.send(command)
        return await self.next_event()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it is true (bounded)."""

    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def first(awaitable: Awaitable[Any], timeout: float = 5.0) -> Any:
    return await asyncio.wait_for(awaitable, timeout)


class TimedHost(RawHost):
    """RawHost that also keeps every event with its arrival time (loop clock)."""

    def __init__(self, controller: VirtualController) -> None:
        super().__init__(controller)
        self.log: list[tuple[float, hci.HCI_Packet]] = []

    def on_packet(self, packet: bytes) -> None:
        parsed = hci.HCI_Packet.from_bytes(packet)
        self.log.append((asyncio.get_running_loop().time(), parsed))
        self.events.put_nowait(parsed)

    def send(self, command: hci.HCI_Command | hci.HCI_AclDataPacket | bytes) -> None:
        self.controller.on_packet(bytes(command))

    def packets(self, kind: type[Any]) -> list[tuple[float, Any]]:
        """Logged (time, packet) pairs of one packet class, in arrival order."""
        return [(t, p) for t, p in self.log if isinstance(p, kind)]

    async def wait_for(self, kind: type[Any], count: int = 1, timeout: float = 2.0) -> Any:
        """Wait until ``count`` packets of ``kind`` arrived; return the last (time, packet)."""
        await wait_until(lambda: len(self.packets(kind)) >= count, timeout)
        return self.packets(kind)[count - 1]
