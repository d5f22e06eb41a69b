"""Legacy advertising as a real controller does it: typed PDUs and real scan responses.

Bumble 0.0.236's ``LegacyAdvertiser`` only ever transmits ADV_IND (any other
configured type is silently not transmitted at all), and its scanners report a
fake SCAN_RSP that repeats the advertising data for every advert.  This module
provides the missing PDU types, the SCAN_REQ/SCAN_RSP exchange and an advertiser
that sends what the host configured, at advertising events (``vradio.timing``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from bumble import hci, ll

from vradio.privacy import Identity, ResolvingList
from vradio.timing import first_advertising_event_delay_s

if TYPE_CHECKING:
    from bumble.controller import Controller

AdvertisingType = hci.HCI_LE_Set_Advertising_Parameters_Command.AdvertisingType
ReportType = hci.HCI_LE_Advertising_Report_Event.EventType
ExtReportType = hci.HCI_LE_Extended_Advertising_Report_Event.EventType

DIRECTED_TYPES = (AdvertisingType.ADV_DIRECT_IND, AdvertisingType.ADV_DIRECT_IND_LOW_DUTY)
CONNECTABLE_TYPES = (AdvertisingType.ADV_IND, *DIRECTED_TYPES)
SCANNABLE_TYPES = (AdvertisingType.ADV_IND, AdvertisingType.ADV_SCAN_IND)

# Shortest legal legacy advertising interval (Core Vol 4, Part E, 7.8.5).
MIN_ADVERTISING_INTERVAL_S = 0.020


@dataclasses.dataclass
class AdvScanInd(ll.AdvertisingPdu):
    """ADV_SCAN_IND: scannable, non-connectable (missing from ``bumble.ll``)."""

    advertiser_address: hci.Address
    data: bytes


@dataclasses.dataclass
class ScanReq(ll.AdvertisingPdu):
    """SCAN_REQ sent by an active scanner to a scannable advertiser."""

    scanner_address: hci.Address
    advertiser_address: hci.Address


@dataclasses.dataclass
class ScanRsp(ll.AdvertisingPdu):
    """SCAN_RSP.  ``scanner_address`` stands in for "heard by the requester only"."""

    advertiser_address: hci.Address
    scanner_address: hci.Address
    data: bytes


LegacyAdvPdu = ll.AdvInd | ll.AdvDirectInd | ll.AdvNonConnInd | AdvScanInd


def own_address(
    controller: Controller, own_address_type: int, peer: Identity | None = None
) -> hci.Address:
    """Address used for an own_address_type (Core Vol 4, Part E, 7.8.5).

    Types 2 and 3 ask the controller for an RPA, made from the local IRK of
    the resolving list's entry for ``peer`` (see :mod:`vradio.privacy`),
    falling back to the public (2) or random (3) address.  Bumble maps type 2
    to the random address, which is wrong.
    """
    resolvable = (hci.OwnAddressType.RESOLVABLE_OR_PUBLIC, hci.OwnAddressType.RESOLVABLE_OR_RANDOM)
    resolving_list: ResolvingList | None = getattr(controller, "resolving_list", None)
    if own_address_type in resolvable and peer is not None and resolving_list is not None:
        rpa = resolving_list.local_rpa(peer)
        if rpa is not None:
            return rpa
    if own_address_type in (hci.OwnAddressType.PUBLIC, hci.OwnAddressType.RESOLVABLE_OR_PUBLIC):
        return controller.public_address
    return controller.random_address


def report_type(pdu: LegacyAdvPdu) -> ReportType:
    """Legacy advertising report event type for a received advertising PDU."""
    match pdu:
        case ll.AdvInd():
            return ReportType.ADV_IND
        case ll.AdvDirectInd():
            return ReportType.ADV_DIRECT_IND
        case AdvScanInd():
            return ReportType.ADV_SCAN_IND
        case _:
            return ReportType.ADV_NONCONN_IND


# Extended report event types for legacy PDUs (Core Vol 4, Part E, 7.7.65.13).
EXTENDED_REPORT_TYPES: dict[int, int] = {
    ReportType.ADV_IND: 0b0010011,
    ReportType.ADV_DIRECT_IND: 0b0010101,
    ReportType.ADV_SCAN_IND: 0b0010010,
    ReportType.ADV_NONCONN_IND: 0b0010000,
}
EXT_SCAN_RSP_TO_ADV_IND = 0b0011011
EXT_SCAN_RSP_TO_ADV_SCAN_IND = 0b0011010


@dataclasses.dataclass
class VirtualLegacyAdvertiser:
    """Replacement for bumble's ``LegacyAdvertiser`` (same attribute names)."""

    controller: Controller
    advertising_interval_min: int = 0
    advertising_interval_max: int = 0
    advertising_type: int = AdvertisingType.ADV_IND
    own_address_type: int = 0
    peer_address_type: int = 0
    peer_address: hci.Address = hci.Address.ANY
    advertising_channel_map: int = 0
    advertising_filter_policy: int = 0
    advertising_data: bytes = b""
    scan_response_data: bytes = b""
    enabled: bool = False
    timer_handle: asyncio.Handle | None = None

    @property
    def address(self) -> hci.Address:
        """Address carried in the advertising PDUs."""
        peer = (self.peer_address_type, bytes(self.peer_address))
        return own_address(self.controller, self.own_address_type, peer)

    @property
    def connectable(self) -> bool:
        return self.advertising_type in CONNECTABLE_TYPES

    @property
    def scannable(self) -> bool:
        return self.advertising_type in SCANNABLE_TYPES

    @property
    def directed_target(self) -> hci.Address | None:
        """Target of directed advertising (typed as the host configured it)."""
        if self.advertising_type not in DIRECTED_TYPES:
            return None
        return hci.Address(bytes(self.peer_address), hci.AddressType(self.peer_address_type))

    def interval_s(self) -> float:
        # BUG (bumble 0.0.236): the interval is in 0.625 ms units, bumble used ms.
        return max(self.advertising_interval_min * 0.000625, MIN_ADVERTISING_INTERVAL_S)

    def _on_timer_fired(self) -> None:
        self.send_advertising_data()
        self.timer_handle = asyncio.get_running_loop().call_later(
            self.interval_s(), self._on_timer_fired
        )

    def start(self) -> None:
        self.stop()
        self.enabled = True
        # Stock sends the first PDU in the same loop turn as the enable command,
        # so a pending initiator connected before the advertiser's host had
        # even seen its Command Complete.  See ``vradio.timing``.
        self.timer_handle = asyncio.get_running_loop().call_later(
            first_advertising_event_delay_s(self.interval_s()), self._on_timer_fired
        )

    def stop(self) -> None:
        if self.timer_handle is not None:
            self.timer_handle.cancel()
            self.timer_handle = None
        self.enabled = False

    def make_pdu(self) -> LegacyAdvPdu:
        """The PDU for the configured advertising type (bumble only sent ADV_IND)."""
        address = self.address
        if (target := self.directed_target) is not None:
            return ll.AdvDirectInd(advertiser_address=address, target_address=target)
        if self.advertising_type == AdvertisingType.ADV_SCAN_IND:
            return AdvScanInd(advertiser_address=address, data=self.advertising_data)
        if self.advertising_type == AdvertisingType.ADV_NONCONN_IND:
            return ll.AdvNonConnInd(advertiser_address=address, data=self.advertising_data)
        return ll.AdvInd(advertiser_address=address, data=self.advertising_data)

    def send_advertising_data(self) -> None:
        if self.enabled:
            self.controller.send_advertising_pdu(self.make_pdu())

    def on_scan_req(self, request: ScanReq) -> None:
        """Answer a SCAN_REQ addressed to us with the configured scan response data."""
        if self.enabled and self.scannable and request.advertiser_address == self.address:
            self.controller.send_advertising_pdu(
                ScanRsp(
                    advertiser_address=self.address,
                    scanner_address=request.scanner_address,
                    data=self.scan_response_data,
                )
            )
