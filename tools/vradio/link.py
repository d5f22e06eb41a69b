"""Shared virtual air interface: bumble's ``LocalLink`` with LE routing fixes.

Bumble's ``LocalLink`` passes PDUs between in-process controllers.  Two of its
LE behaviours do not match a real radio; both are corrected here so that the
fixes could be proposed upstream as-is.

The link itself is instantaneous: *when* a connection's PDUs go on air is
decided by the sending connection (``vradio.controller.VirtualConnection``,
see ``vradio.timing``), which calls :meth:`VirtualLink.deliver_le_acl` and
:meth:`VirtualLink.deliver_le_control` at its connection events.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, runtime_checkable

from bumble import core, hci, ll
from bumble.controller import Controller
from bumble.link import LocalLink

logger = logging.getLogger(__name__)


@runtime_checkable
class ConnectionAcceptor(Protocol):
    """A controller that can decide synchronously whether it accepts a CONNECT_IND."""

    def accept_le_connection(self, connect_ind: ll.ConnectInd) -> bool: ...


class VirtualLink(LocalLink):
    """``LocalLink`` with correct LE source addresses and atomic connection setup."""

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: core.PhysicalTransport,
        data: bytes,
    ) -> None:
        # BUG (bumble 0.0.236): LocalLink stamps every LE ACL PDU with the
        # sender's *random* address, whatever address the connection was made
        # with.  The receiver looks its connection up by that source address, so
        # on a link made with a public address (own_address_type=PUBLIC) every
        # ACL PDU (ATT, SMP, L2CAP signalling) is dropped with "no connection
        # for ...": connecting works but pairing times out.  The source address
        # must be the address the sender's side of *this connection* uses.
        if transport != core.PhysicalTransport.LE:
            super().send_acl_data(sender_controller, destination_address, transport, data)
            return
        connection = sender_controller.le_connections.get(destination_address)
        destination = self.find_le_controller(destination_address)
        if connection is None or destination is None:
            logger.warning("dropping LE ACL PDU to unknown peer %s", destination_address)
            return
        source_address = connection.self_address
        asyncio.get_running_loop().call_soon(
            destination.on_link_acl_data, source_address, transport, data
        )

    def _connected_peer(
        self, source_address: hci.Address, destination_address: hci.Address
    ) -> Controller | None:
        """The controller at ``destination_address`` still connected to ``source_address``."""
        destination = self.find_le_controller(destination_address)
        if destination is None:
            return None
        connection = destination.le_connections.get(source_address)
        if connection is None or connection.self_address != destination_address:
            return None
        return destination

    def deliver_le_acl(
        self, source_address: hci.Address, destination_address: hci.Address, data: bytes
    ) -> None:
        """Hand an L2CAP PDU transmitted on an LE connection to the receiving controller.

        A PDU sent while the receiver was disconnecting (it has already
        reported Disconnection Complete) is lost, as on air.
        """
        destination = self._connected_peer(source_address, destination_address)
        if destination is None:
            logger.debug("ACL PDU %s -> %s lost: no link", source_address, destination_address)
            return
        destination.on_link_acl_data(source_address, core.PhysicalTransport.LE, data)

    def deliver_le_control(
        self,
        source_address: hci.Address,
        destination_address: hci.Address,
        packet: ll.ControlPdu,
    ) -> None:
        """Hand an LL control PDU to the receiving controller (lost if it left the link)."""
        destination = self._connected_peer(source_address, destination_address)
        if destination is None:
            logger.debug("LL %s -> %s lost: no link", packet, destination_address)
            return
        destination.on_ll_control_pdu(source_address, packet)

    def connect(self, initiator: Controller, connect_ind: ll.ConnectInd) -> bool:
        """Deliver a CONNECT_IND and report whether an advertiser accepted it.

        On air, CONNECT_IND follows the advertiser's PDU within the same
        advertising event, so it only ever reaches a device that is still
        advertising connectably.  Bumble instead broadcasts it asynchronously
        and the initiator reports success without waiting, which yields
        half-open links when the advertiser stopped in the meantime.  Asking
        the advertiser synchronously keeps both ends consistent.
        """
        for controller in list(self.controllers):
            if controller is initiator or not isinstance(controller, ConnectionAcceptor):
                continue
            if controller.accept_le_connection(connect_ind):
                return True
        return False
