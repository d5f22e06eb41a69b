"""Keep a controller's HCI traffic in memory, for assertions about what a host saw.

A host under test reports less than its controller told it (MicroPython's
``_IRQ_ENCRYPTION_UPDATE`` has no HCI status, its disconnect IRQs no reason);
:class:`HciRecorder` installed as ``controller.snooper`` keeps the packets, so
a test can check e.g. that a re-encryption failed with "PIN or Key Missing".
It passes every packet on to the snooper it replaces (a btsnoop trace).
"""

from __future__ import annotations

import logging
from typing import TypeVar

from bumble import hci
from bumble.snoop import Snooper

from vradio.controller import VirtualController

logger = logging.getLogger(__name__)

EventT = TypeVar("EventT", bound=hci.HCI_Event)


class HciRecorder(Snooper):
    """Every packet in order: ``(direction, H4 bytes)``."""

    def __init__(self, inner: Snooper | None = None) -> None:
        self.inner = inner
        self.packets: list[tuple[Snooper.Direction, bytes]] = []

    @classmethod
    def install(cls, controller: VirtualController) -> HciRecorder:
        """Record ``controller``'s traffic, still feeding its current snooper."""
        recorder = cls(controller.snooper)
        controller.snooper = recorder
        return recorder

    def snoop(self, hci_packet: bytes, direction: Snooper.Direction) -> None:
        self.packets.append((direction, bytes(hci_packet)))
        if self.inner is not None:
            self.inner.snoop(hci_packet, direction)

    def events(self, kind: type[EventT], since: int = 0) -> list[EventT]:
        """The events of class ``kind`` the controller sent, from packet ``since`` on."""
        found = []
        for direction, packet in self.packets[since:]:
            to_host = direction == Snooper.Direction.CONTROLLER_TO_HOST
            if not to_host or packet[0] != hci.HCI_EVENT_PACKET:
                continue
            try:
                event = hci.HCI_Packet.from_bytes(packet)
            except (ValueError, IndexError) as error:  # not ours to judge here
                logger.debug("unparsable event %s: %s", packet.hex(), error)
                continue
            if isinstance(event, kind):
                found.append(event)
        return found
