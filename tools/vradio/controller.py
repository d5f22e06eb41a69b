"""A bumble LE controller that behaves enough like real silicon for real BLE hosts.

``VirtualController`` subclasses ``bumble.controller.Controller`` (0.0.236) and
overrides only what is needed.  Every fix is commented with the stock bug it
addresses so that it can be proposed upstream on its own:

1. Unknown / vendor-specific commands get Command Complete "Unknown HCI Command"
   (0x01); async commands without a handler get Command Status 0x01.  Stock
   bumble sends nothing and the host (e.g. BTstack, whose first command is the
   vendor opcode 0xFC09) waits forever.
2. LE Encrypt is implemented (stock: advertised as supported but unanswered);
   LE Rand draws from a CSPRNG.
3. Legacy advertising sends the configured PDU type; scanners report the right
   event type and a real scan response only for active scans of scannable
   adverts; reports use the legacy or extended format matching the scan
   commands the host used.
4. LE Create Connection completes only once a connectable advertiser accepted
   the CONNECT_IND; Create Connection Cancel works (status 0x02 completion).
5. Public-address links work (see ``vradio.link``); own_address_type 2 maps to
   the public address.
6. HCI Reset really resets LE state; disconnect reasons, unknown handles,
   encryption key refresh, ACL fragmentation and the advertising interval unit
   are corrected.
7. Radio timing: connections happen at advertising events and connection
   traffic (ACL and LL control PDUs, and with it Number Of Completed Packets)
   moves at connection events, instead of instantly (``vradio.timing``;
   ``VirtualConnection``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import secrets
import struct
from typing import Any

from bumble import crypto, hci, ll
from bumble.controller import AdvertisingSet, Connection, Controller
from bumble.core import PhysicalTransport
from bumble.snoop import Snooper

from vradio.advertising import (
    EXT_SCAN_RSP_TO_ADV_IND,
    EXT_SCAN_RSP_TO_ADV_SCAN_IND,
    EXTENDED_REPORT_TYPES,
    AdvScanInd,
    LegacyAdvPdu,
    ReportType,
    ScanReq,
    ScanRsp,
    VirtualLegacyAdvertiser,
    own_address,
    report_type,
)
from vradio.link import VirtualLink
from vradio.privacy import ResolvingList
from vradio.timing import ConnectionEvents

logger = logging.getLogger(__name__)

Status = hci.HCI_ErrorCode
LE_SCAN_TYPE_ACTIVE = 1
NO_PUBLIC_ADDRESS = "00:00:00:00:00:00"
VENDOR_OGF = 0x3F


@dataclasses.dataclass
class VirtualConnection(Connection):
    """LE connection whose link layer transmits at connection events.

    Stock ``Connection`` passes each L2CAP PDU and LL control PDU to the link
    at once and reports every HCI ACL packet completed on arrival.  Here both
    directions' traffic is queued and sent at this side's next connection
    event (``vradio.timing``), in order, and Number Of Completed Packets is
    reported when the packets have been sent.
    """

    interval: int = 0  # connection interval, 1.25 ms units

    def __post_init__(self) -> None:
        super().__post_init__()
        self.events = ConnectionEvents(self.interval, after_event=self._report_completed)
        self.disconnected = False
        self._terminating = False
        self._transmitted = 0

    @property
    def virtual_link(self) -> VirtualLink:
        assert isinstance(self.link, VirtualLink)
        return self.link

    def on_hci_acl_data_packet(self, packet: hci.HCI_AclDataPacket) -> None:
        self.assembler.feed_packet(packet)  # may queue a complete L2CAP PDU
        self.events.submit(self._count_transmitted)

    def _count_transmitted(self) -> None:
        self._transmitted += 1

    def _report_completed(self) -> None:
        count, self._transmitted = self._transmitted, 0
        # After Disconnection Complete the host has reclaimed the buffers and
        # the handle may already belong to a new connection: report nothing.
        if count and not self.disconnected:
            self.controller.send_hci_packet(
                hci.HCI_Number_Of_Completed_Packets_Event(
                    connection_handles=[self.handle], num_completed_packets=[count]
                )
            )

    def on_acl_pdu(self, pdu: bytes) -> None:
        self.events.submit(
            functools.partial(
                self.virtual_link.deliver_le_acl, self.self_address, self.peer_address, pdu
            )
        )

    def send_ll_control_pdu(self, packet: ll.ControlPdu) -> None:
        if isinstance(packet, ll.TerminateInd):
            self._terminating = True
        self.events.submit(
            functools.partial(
                self.virtual_link.deliver_le_control, self.self_address, self.peer_address, packet
            )
        )

    def on_disconnected(self) -> None:
        """Called once Disconnection Complete has been sent to the host."""
        self.disconnected = True
        # An LL_TERMINATE_IND we queued still goes on air, after the data the
        # host sent before disconnecting; otherwise the link is gone and so is
        # whatever was waiting for the next event.
        self.events.close(flush=self._terminating)

    def abandon(self) -> None:
        """Power-off / reset: nothing queued is ever sent."""
        self.disconnected = True
        self.events.close()


# LE event mask bit of LE Enhanced Connection Complete (Core Vol 4, Part E, 7.8.1).
LE_ENHANCED_CONNECTION_COMPLETE = 1 << 9


class VirtualController(Controller):
    """LE-only virtual controller attached to a :class:`VirtualLink`.

    ``public_address=None`` models a controller without a public address (for
    example a Zephyr HCI controller): Read BD_ADDR returns 00:00:00:00:00:00 and
    the host is expected to use a random static address.
    ``extended_advertising`` keeps bumble's (unfixed) extended advertising
    feature bit; by default the controller offers legacy advertising only,
    which is what the MicroPython hosts use.
    """

    def __init__(
        self,
        name: str,
        link: VirtualLink,
        public_address: str | None = None,
        extended_advertising: bool = False,
    ) -> None:
        super().__init__(
            name,
            link=link,
            public_address=hci.Address(
                public_address or NO_PUBLIC_ADDRESS, hci.Address.PUBLIC_DEVICE_ADDRESS
            ),
        )
        self.link: VirtualLink = link
        if not extended_advertising:
            self.le_features &= ~(
                hci.LeFeatureMask.LE_EXTENDED_ADVERTISING
                | hci.LeFeatureMask.LE_PERIODIC_ADVERTISING
            )
        self.le_legacy_advertiser = VirtualLegacyAdvertiser(self)  # type: ignore[assignment]
        self.snooper: Snooper | None = None
        self._le_scan_extended = False
        self._reported: set[tuple[hci.Address, int]] = set()
        self._encrypted_handles: set[int] = set()
        # Advert type we sent each SCAN_REQ for (the extended SCAN_RSP report
        # type depends on it).
        self._scan_requested: dict[hci.Address, int] = {}
        self.resolving_list = ResolvingList()

    # ------------------------------------------------------------------ tracing
    def on_packet(self, packet: bytes) -> None:
        if self.snooper is not None:
            self.snooper.snoop(packet, Snooper.Direction.HOST_TO_CONTROLLER)
        if packet[:1] != bytes([hci.HCI_COMMAND_PACKET]) or len(packet) < 4:
            super().on_packet(packet)
            return
        (op_code,) = struct.unpack_from("<H", packet, 1)
        if op_code >> 10 == VENDOR_OGF:
            # Bumble registers host-side *driver* classes for some vendor
            # opcodes (0xFC09 is Intel's Secure Send, and also BTstack's first
            # command, a Broadcom one); a controller must not parse them with
            # those, which fails on short parameters and leaves the host hanging.
            self.on_hci_packet(hci.HCI_Command(packet[4:], op_code=op_code))
            return
        try:
            command = hci.HCI_Packet.from_bytes(packet)
        except (IndexError, ValueError, struct.error) as error:
            # Malformed parameters: stock raises and never answers.
            logger.warning("[%s] bad command %s: %s", self.name, packet.hex(), error)
            self.send_hci_packet(
                hci.HCI_Command_Complete_Event(
                    num_hci_command_packets=1,
                    command_opcode=op_code,
                    return_parameters=hci.HCI_StatusReturnParameters(
                        Status.INVALID_COMMAND_PARAMETERS_ERROR
                    ),
                )
            )
            return
        self.on_hci_packet(command)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if self.snooper is not None:
            self.snooper.snoop(bytes(packet), Snooper.Direction.CONTROLLER_TO_HOST)
        super().send_hci_packet(packet)

    # ------------------------------------------------------- fix 1: unknown cmds
    def on_hci_command_packet(self, command: hci.HCI_Command) -> None:
        # BUG: stock only answers commands whose class is a registered
        # HCI_SyncCommand/HCI_AsyncCommand.  A command unknown to bumble (vendor
        # opcodes, LE Encrypt, ...) parses as a plain HCI_Command, the fallback
        # handler's "Unknown HCI Command" result is discarded, and the host hangs
        # waiting for Command Complete.  Likewise an async command without a
        # handler gets no Command Status.
        if isinstance(command, hci.HCI_SyncCommand):
            super().on_hci_command_packet(command)
            return
        handler = getattr(self, f"on_{command.name.lower()}", self.on_hci_command)
        result = handler(command)
        if result is None:
            return
        if isinstance(command, hci.HCI_AsyncCommand):
            self._send_hci_command_status(result.status, command.op_code)
        else:
            self.send_hci_packet(
                hci.HCI_Command_Complete_Event(
                    num_hci_command_packets=1,
                    command_opcode=command.op_code,
                    return_parameters=result,
                )
            )

    # ------------------------------------------------------------ fix 2: crypto
    def on_hci_le_encrypt_command(self, command: hci.HCI_Command) -> hci.HCI_ReturnParameters:
        """LE Encrypt (Core Vol 4, Part E, 7.8.22): AES-128 of one block.

        Key, plaintext and result are sent least significant octet first, i.e.
        byte-reversed relative to FIPS-197 notation; ``crypto.e`` uses exactly
        that convention (it is the spec's security function e).
        """
        params = command.parameters
        if len(params) != 32:
            return hci.HCI_StatusReturnParameters(Status.INVALID_COMMAND_PARAMETERS_ERROR)
        # bumble has no LE Encrypt classes; a generic blob serialises as is.
        encrypted = crypto.e(params[:16], params[16:])
        return hci.HCI_GenericReturnParameters(data=bytes([Status.SUCCESS]) + encrypted)

    def on_hci_le_rand_command(
        self, _command: hci.HCI_LE_Rand_Command
    ) -> hci.HCI_LE_Rand_ReturnParameters:
        # Stock uses random.randint(0, 1 << 64) (not a CSPRNG, and the inclusive
        # upper bound overflows struct 'Q'); hosts use these bytes for SMP.
        return hci.HCI_LE_Rand_ReturnParameters(
            status=Status.SUCCESS, random_number=secrets.token_bytes(8)
        )

    # ----------------------------------------------------------- fix 6: reset
    def on_hci_reset_command(
        self, _command: hci.HCI_Reset_Command
    ) -> hci.HCI_StatusReturnParameters:
        # Stock Reset is a no-op: a restarted host would inherit connections,
        # advertising and scanning from its previous life.  A real controller
        # drops its links (the peers see a supervision timeout) and returns to
        # its power-on state.
        self.drop_all_le_connections()
        self.le_legacy_advertiser.stop()
        self.le_legacy_advertiser = VirtualLegacyAdvertiser(self)  # type: ignore[assignment]
        for advertising_set in self.advertising_sets.values():
            advertising_set.stop()
        self.advertising_sets.clear()
        self.le_scan_enable = False
        self._le_scan_extended = False
        self.le_scan_type = 0
        self.pending_le_connection = None
        self._random_address = hci.Address.ANY_RANDOM
        self.event_mask = 0
        self.le_event_mask = 0
        self.resolving_list = ResolvingList()
        return hci.HCI_StatusReturnParameters(Status.SUCCESS)

    # ------------------------------------------- controller-based privacy
    # Stock accepts these and keeps nothing: a host relying on the controller
    # for its RPA (NimBLE) advertised with its identity address instead.
    def on_hci_le_add_device_to_resolving_list_command(
        self, command: hci.HCI_LE_Add_Device_To_Resolving_List_Command
    ) -> hci.HCI_StatusReturnParameters:
        peer = (int(command.peer_identity_address_type), bytes(command.peer_identity_address))
        self.resolving_list.add(peer, bytes(command.peer_irk), bytes(command.local_irk))
        return hci.HCI_StatusReturnParameters(Status.SUCCESS)

    def on_hci_le_remove_device_from_resolving_list_command(
        self, command: hci.HCI_Command
    ) -> hci.HCI_StatusReturnParameters:
        # bumble has no class for this command: type (1), address (6).
        params = bytes(command.parameters)
        if len(params) != 7:
            return hci.HCI_StatusReturnParameters(
                hci.HCI_ErrorCode.INVALID_COMMAND_PARAMETERS_ERROR
            )
        peer = (params[0], params[1:7])
        found = self.resolving_list.remove(peer)
        return hci.HCI_StatusReturnParameters(
            Status.SUCCESS if found else hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR
        )

    def on_hci_le_clear_resolving_list_command(
        self, _command: hci.HCI_LE_Clear_Resolving_List_Command
    ) -> hci.HCI_StatusReturnParameters:
        self.resolving_list.clear()
        return hci.HCI_StatusReturnParameters(Status.SUCCESS)

    def on_hci_le_set_address_resolution_enable_command(
        self, command: hci.HCI_LE_Set_Address_Resolution_Enable_Command
    ) -> hci.HCI_StatusReturnParameters:
        if command.address_resolution_enable not in (0, 1):
            return hci.HCI_StatusReturnParameters(
                hci.HCI_ErrorCode.INVALID_COMMAND_PARAMETERS_ERROR
            )
        self.resolving_list.enabled = command.address_resolution_enable == 1
        return hci.HCI_StatusReturnParameters(Status.SUCCESS)

    def drop_all_le_connections(self) -> None:
        """Forget all LE links silently; peers get Disconnection Complete 0x08."""
        loop = asyncio.get_running_loop()
        for connection in list(self.le_connections.values()):
            del self.le_connections[connection.peer_address]
            if isinstance(connection, VirtualConnection):
                connection.abandon()
            # Stands in for the peer's supervision timeout (not modelled: it
            # would be seconds).  Outside this HCI command, like any air event;
            # lost if the peer has left the link already.
            loop.call_soon(
                self.link.deliver_le_control,
                connection.self_address,
                connection.peer_address,
                ll.TerminateInd(Status.CONNECTION_TIMEOUT_ERROR),
            )
        self._encrypted_handles.clear()

    # ------------------------------------------------------- fix 6: disconnect
    def on_hci_disconnect_command(self, command: hci.HCI_Disconnect_Command) -> None:
        connection = self.find_le_connection_by_handle(command.connection_handle)
        if connection is None:
            if self.find_connection_by_handle(command.connection_handle) is None and not (
                self.find_classic_sco_link_by_handle(command.connection_handle)
                or self.find_iso_link_by_handle(command.connection_handle)
            ):
                # Stock replies "pending" for unknown handles and then never
                # completes.
                self._send_hci_command_status(
                    Status.UNKNOWN_CONNECTION_IDENTIFIER_ERROR, command.op_code
                )
                return
            super().on_hci_disconnect_command(command)
            return
        self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, command.op_code)
        connection.send_ll_control_pdu(ll.TerminateInd(command.reason))
        # The initiating side reports "terminated by local host" (0x16); stock
        # echoes the reason sent to the peer.
        self.on_le_disconnected(connection, Status.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR)

    def on_le_disconnected(self, connection: Connection, reason: int) -> None:
        self._encrypted_handles.discard(connection.handle)
        super().on_le_disconnected(connection, reason)
        if isinstance(connection, VirtualConnection):
            connection.on_disconnected()

    # ------------------------------------------- fix 7: connection parameters
    def on_hci_le_connection_update_command(
        self, command: hci.HCI_LE_Connection_Update_Command
    ) -> None:
        super().on_hci_le_connection_update_command(command)
        connection = self.find_le_connection_by_handle(command.connection_handle)
        if isinstance(connection, VirtualConnection):
            # Stock picks interval_max for the LL_CONNECTION_UPDATE_IND.
            connection.events.set_interval(command.connection_interval_max)

    def on_ll_control_pdu(self, sender_address: hci.Address, packet: ll.ControlPdu) -> None:
        connection = self.le_connections.get(sender_address)
        if isinstance(packet, ll.ConnectionUpdateInd) and isinstance(
            connection, VirtualConnection
        ):
            connection.events.set_interval(packet.interval)
        super().on_ll_control_pdu(sender_address, packet)

    # -------------------------------------------------------- fix 6: encryption
    def on_le_encryption_change(self, connection: Connection, status: int) -> None:
        # Starting encryption on an already encrypted link is a key refresh and
        # must be reported as Encryption Key Refresh Complete (Core Vol 4,
        # Part E, 7.7.39); stock always sends Encryption Change.
        if status == Status.SUCCESS and connection.handle in self._encrypted_handles:
            self.send_hci_packet(
                hci.HCI_Encryption_Key_Refresh_Complete_Event(
                    status=status, connection_handle=connection.handle
                )
            )
            return
        if status == Status.SUCCESS:
            self._encrypted_handles.add(connection.handle)
        super().on_le_encryption_change(connection, status)

    # ------------------------------------------------------ fix 6: ACL to host
    def on_link_acl_data(
        self, sender_address: hci.Address, transport: PhysicalTransport, data: bytes
    ) -> None:
        # Stock hands a whole L2CAP PDU (e.g. 521 bytes) to the host in one HCI
        # ACL packet ("TODO: should fragment"), which can overflow a host's ACL
        # buffer.  Fragment to the LE ACL packet length like a real controller.
        if transport != PhysicalTransport.LE:
            super().on_link_acl_data(sender_address, transport, data)
            return
        connection = self.le_connections.get(sender_address)
        if connection is None:
            logger.warning("[%s] ACL data from unconnected %s", self.name, sender_address)
            return
        size = self.le_acl_data_packet_length
        for offset in range(0, max(len(data), 1), size):
            fragment = data[offset : offset + size]
            pb_flag = 0b10 if offset == 0 else 0b01  # first flushable / continuing
            self.send_hci_packet(
                hci.HCI_AclDataPacket(connection.handle, pb_flag, 0, len(fragment), fragment)
            )

    # ------------------------------------------------------- fix 3: scanning
    def on_hci_le_set_scan_enable_command(
        self, command: hci.HCI_LE_Set_Scan_Enable_Command
    ) -> hci.HCI_StatusReturnParameters:
        # Remember which command family started the scan: a controller must
        # answer legacy scan commands with legacy advertising reports, whereas
        # stock picks the report format from its own feature bits.
        self._le_scan_extended = False
        self._reported.clear()
        return super().on_hci_le_set_scan_enable_command(command)

    def on_hci_le_set_extended_scan_parameters_command(
        self, command: hci.HCI_LE_Set_Extended_Scan_Parameters_Command
    ) -> hci.HCI_StatusReturnParameters:
        # Stock forgets the scan type, so active extended scans were not active.
        if command.scan_types:
            self.le_scan_type = command.scan_types[0]
        return super().on_hci_le_set_extended_scan_parameters_command(command)

    def on_hci_le_set_extended_scan_enable_command(
        self, command: hci.HCI_LE_Set_Extended_Scan_Enable_Command
    ) -> hci.HCI_StatusReturnParameters:
        self._le_scan_extended = True
        self._reported.clear()
        return super().on_hci_le_set_extended_scan_enable_command(command)

    @property
    def scan_address(self) -> hci.Address:
        return own_address(self, self.le_scan_own_address_type)

    def on_ll_advertising_pdu(self, packet: ll.AdvertisingPdu) -> None:
        match packet:
            case ll.ConnectInd():
                pass  # connections are set up atomically via VirtualLink.connect()
            case ScanReq():
                self.le_legacy_advertiser.on_scan_req(packet)  # type: ignore[attr-defined]
            case ScanRsp():
                self._on_scan_rsp(packet)
            case ll.AdvInd() | ll.AdvDirectInd() | ll.AdvNonConnInd() | AdvScanInd():
                self._on_legacy_advertising_pdu(packet)
            case _:
                super().on_ll_advertising_pdu(packet)

    def _on_legacy_advertising_pdu(self, pdu: LegacyAdvPdu) -> None:
        kind = report_type(pdu)
        if isinstance(pdu, ll.AdvDirectInd):
            # Directed adverts are only heard by their target.
            if pdu.target_address not in (self.public_address, self.random_address):
                return
        if self.le_scan_enable:
            data = b"" if isinstance(pdu, ll.AdvDirectInd) else pdu.data
            self._report(kind, pdu.advertiser_address, data)
            if self.le_scan_type == LE_SCAN_TYPE_ACTIVE and kind in (
                ReportType.ADV_IND,
                ReportType.ADV_SCAN_IND,
            ):
                self.send_advertising_pdu(
                    ScanReq(
                        scanner_address=self.scan_address,
                        advertiser_address=pdu.advertiser_address,
                    )
                )
                self._scan_requested[pdu.advertiser_address] = kind
        pending = self.pending_le_connection
        if (
            pending is not None
            and kind in (ReportType.ADV_IND, ReportType.ADV_DIRECT_IND)
            and pending.peer_address == pdu.advertiser_address
        ):
            self.create_le_connection(pdu.advertiser_address)

    def _on_scan_rsp(self, rsp: ScanRsp) -> None:
        if (
            self.le_scan_enable
            and self.le_scan_type == LE_SCAN_TYPE_ACTIVE
            and rsp.scanner_address == self.scan_address
        ):
            kind = self._scan_requested.pop(rsp.advertiser_address, ReportType.ADV_IND)
            self._report(ReportType.SCAN_RSP, rsp.advertiser_address, rsp.data, kind)

    def _report(
        self,
        kind: int,
        address: hci.Address,
        data: bytes,
        scanned_kind: int = ReportType.ADV_IND,
    ) -> None:
        """Send one advertising report in the format matching the scan commands."""
        if self.filter_duplicates:
            if (address, kind) in self._reported:
                return
            self._reported.add((address, kind))
        if not self._le_scan_extended:
            report = hci.HCI_LE_Advertising_Report_Event.Report(
                event_type=kind,
                address_type=address.address_type,
                address=address,
                data=data,
                rssi=-50,
            )
            self.send_hci_packet(hci.HCI_LE_Advertising_Report_Event([report]))
            return
        if kind == ReportType.SCAN_RSP:
            # Only scannable undirected types are scanned; ADV_IND is connectable.
            ext_type = (
                EXT_SCAN_RSP_TO_ADV_SCAN_IND
                if scanned_kind == ReportType.ADV_SCAN_IND
                else EXT_SCAN_RSP_TO_ADV_IND
            )
        else:
            ext_type = EXTENDED_REPORT_TYPES[kind]
        ext_report = hci.HCI_LE_Extended_Advertising_Report_Event.Report(
            event_type=ext_type,
            address_type=address.address_type,
            address=address,
            primary_phy=hci.Phy.LE_1M,
            secondary_phy=0,
            advertising_sid=0xFF,
            tx_power=hci.HCI_LE_Extended_Advertising_Report_Event.TX_POWER_INFORMATION_NOT_AVAILABLE,
            rssi=-50,
            periodic_advertising_interval=0,
            direct_address_type=0,
            direct_address=hci.Address.ANY,
            data=data,
        )
        self.send_hci_packet(hci.HCI_LE_Extended_Advertising_Report_Event([ext_report]))

    # ---------------------------------------------- fix 4: connection set-up
    def create_le_connection(self, peer_address: hci.Address) -> None:
        # BUG: stock broadcasts CONNECT_IND and reports success to its host
        # without knowing whether the advertiser still advertises connectably;
        # the peer may ignore it, leaving a half-open link.  Here the advertiser
        # decides synchronously and the initiator stays pending on refusal.
        pending = self.pending_le_connection
        if pending is None or peer_address in self.le_connections:
            return
        if isinstance(pending, hci.HCI_LE_Extended_Create_Connection_Command):
            interval = pending.connection_interval_mins[0]
            latency = pending.max_latencies[0]
            timeout = pending.supervision_timeouts[0]
        else:
            interval = pending.connection_interval_min
            latency = pending.max_latency
            timeout = pending.supervision_timeout
        self_address = own_address(self, pending.own_address_type)
        connect_ind = ll.ConnectInd(
            initiator_address=self_address,
            advertiser_address=peer_address,
            interval=interval,
            latency=latency,
            timeout=timeout,
        )
        if not self.link.connect(self, connect_ind):
            return
        self.pending_le_connection = None
        connection = self._add_le_connection(
            hci.Role.CENTRAL, self_address, peer_address, connect_ind.interval
        )
        self._send_le_connection_complete(connection, connect_ind)

    def accept_le_connection(self, connect_ind: ll.ConnectInd) -> bool:
        """Peripheral side of :meth:`VirtualLink.connect`: accept or ignore."""
        initiator = connect_ind.initiator_address
        if initiator in self.le_connections:
            return False
        advertiser = self.le_legacy_advertiser
        assert isinstance(advertiser, VirtualLegacyAdvertiser)
        if (
            advertiser.enabled
            and advertiser.connectable
            and advertiser.address == connect_ind.advertiser_address
            and advertiser.directed_target in (None, initiator)
        ):
            advertiser.stop()
            connection = self._add_le_connection(
                hci.Role.PERIPHERAL,
                connect_ind.advertiser_address,
                initiator,
                connect_ind.interval,
            )
            self._send_le_connection_complete(connection, connect_ind)
            return True
        advertising_set = self._connectable_advertising_set(connect_ind.advertiser_address)
        if advertising_set is None:
            return False
        advertising_set.stop()
        connection = self._add_le_connection(
            hci.Role.PERIPHERAL, connect_ind.advertiser_address, initiator, connect_ind.interval
        )
        self._send_le_connection_complete(connection, connect_ind)
        self.send_hci_packet(
            hci.HCI_LE_Advertising_Set_Terminated_Event(
                status=Status.SUCCESS,
                advertising_handle=advertising_set.handle,
                connection_handle=connection.handle,
                num_completed_extended_advertising_events=0,
            )
        )
        return True

    def _connectable_advertising_set(self, address: hci.Address) -> AdvertisingSet | None:
        for advertising_set in self.advertising_sets.values():
            properties = (
                advertising_set.parameters.advertising_event_properties
                if advertising_set.parameters
                else 0
            )
            if advertising_set.enabled and advertising_set.address == address and properties & 1:
                return advertising_set
        return None

    def _add_le_connection(
        self, role: hci.Role, self_address: hci.Address, peer_address: hci.Address, interval: int
    ) -> VirtualConnection:
        connection = VirtualConnection(
            controller=self,
            handle=self.allocate_connection_handle(),
            role=role,
            self_address=self_address,
            peer_address=peer_address,
            link=self.link,
            transport=PhysicalTransport.LE,
            link_type=hci.HCI_Connection_Complete_Event.LinkType.ACL,
            interval=interval,
        )
        self.le_connections[peer_address] = connection
        return connection

    def _send_le_connection_complete(
        self, connection: Connection, connect_ind: ll.ConnectInd
    ) -> None:
        # Both ends report the parameters the central chose (stock peripheral
        # reported a 100 ms supervision timeout regardless).
        fields: dict[str, Any] = dict(
            status=Status.SUCCESS,
            connection_handle=connection.handle,
            role=connection.role,
            peer_address_type=connection.peer_address.address_type,
            peer_address=connection.peer_address,
            connection_interval=connect_ind.interval,
            peripheral_latency=connect_ind.latency,
            supervision_timeout=connect_ind.timeout,
            central_clock_accuracy=0,
        )
        local = connection.self_address
        if self.le_event_mask & LE_ENHANCED_CONNECTION_COMPLETE and self.resolving_list.made(
            local
        ):
            # The host must learn the RPA it was reached at (SMP's confirm
            # and DHKey check values include it): the enhanced event, which
            # the host has unmasked, carries it (Core Vol 4, Part E, 7.7.65.10).
            event: hci.HCI_Event = hci.HCI_LE_Enhanced_Connection_Complete_Event(
                **fields,
                local_resolvable_private_address=local,
                peer_resolvable_private_address=hci.Address.ANY_RANDOM,
            )
        else:
            event = hci.HCI_LE_Connection_Complete_Event(**fields)
        self.send_hci_packet(event)

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        # BUG: stock returns success but keeps the connection pending and never
        # sends the LE Connection Complete (status 0x02) the spec requires
        # (Core Vol 4, Part E, 7.8.13), so hosts wait forever.
        if self.pending_le_connection is None:
            return hci.HCI_StatusReturnParameters(Status.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        event = hci.HCI_LE_Connection_Complete_Event(
            status=Status.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=0,
            peer_address=hci.Address.ANY,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # Command Complete (sent by our caller) must precede the event.
        asyncio.get_running_loop().call_soon(self.send_hci_packet, event)
        return hci.HCI_StatusReturnParameters(Status.SUCCESS)

    def __repr__(self) -> str:
        return f"VirtualController({self.name!r}, public={self.public_address})"

    def close(self) -> None:
        """Leave the link as if powered off: peers see their links time out."""
        self.drop_all_le_connections()
        self.le_legacy_advertiser.stop()
        for advertising_set in self.advertising_sets.values():
            advertising_set.stop()
        if self in self.link.controllers:
            self.link.remove_controller(self)
