"""Advertising PDU types and real scan responses, as seen by a bumble scanner."""

from __future__ import annotations

import pytest
from bumble import hci
from bumble.device import Advertisement, AdvertisingType
from vradio.radio import VirtualRadio
from vradio_testlib import EventRecorder, Runner, wait_until

ADV_DATA = b"\x07\x09vradio"
SCAN_RSP_DATA = b"\x08\x09scanrsp"
ADV = hci.HCI_LE_Advertising_Report_Event.EventType
# Advertising events to see before judging what arrived: enough that an
# active scanner has had scan responses, and that a missing one is missing.
EVENTS = 3


def is_scan_response(report: hci.HCI_LE_Advertising_Report_Event.Report) -> bool:
    # Legacy reports: event type 4; extended ones: bit 3 of the event type.
    return report.event_type == ADV.SCAN_RSP or bool(report.event_type & 0b1000)


async def observe(
    advertising_type: AdvertisingType, active: bool, extended_scanner: bool = False
) -> tuple[list[hci.HCI_LE_Advertising_Report_Event.Report], list[Advertisement]]:
    """Advertise on one device, scan from another; return reports and advertisements."""
    async with VirtualRadio() as radio:
        scan_controller = radio.add_controller("scanner", extended_advertising=extended_scanner)
        recorder = EventRecorder()
        scan_controller.snooper = recorder
        advertiser = await radio.add_device(
            radio.add_controller("adv"), "adv", "C2:00:00:00:00:01"
        )
        scanner = await radio.add_device(scan_controller, "scan", "C2:00:00:00:00:02")
        seen: list[Advertisement] = []
        scanner.on("advertisement", seen.append)
        await advertiser.start_advertising(
            advertising_type=advertising_type,
            advertising_data=ADV_DATA,
            scan_response_data=SCAN_RSP_DATA,
            advertising_interval_min=20,
            advertising_interval_max=20,
        )
        await scanner.start_scanning(active=active)

        def ours() -> list[hci.HCI_LE_Advertising_Report_Event.Report]:
            return [
                r for r in recorder.advertising_reports() if r.address == advertiser.random_address
            ]

        def enough() -> bool:
            primary = [r for r in ours() if not is_scan_response(r)]
            answered = not (active and advertising_type.is_scannable) or any(
                is_scan_response(r) for r in ours()
            )
            return len(primary) >= EVENTS and answered

        await wait_until(enough)
        await scanner.stop_scanning()
        reports = ours()
        return reports, [ad for ad in seen if ad.address == advertiser.random_address]


def by_type(reports: list[hci.HCI_LE_Advertising_Report_Event.Report]) -> dict[int, bytes]:
    return {report.event_type: report.data for report in reports}


@pytest.mark.parametrize(
    ("advertising_type", "active", "expected"),
    [
        (AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE, True, {ADV.ADV_IND, ADV.SCAN_RSP}),
        (AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE, False, {ADV.ADV_IND}),
        (AdvertisingType.UNDIRECTED_SCANNABLE, True, {ADV.ADV_SCAN_IND, ADV.SCAN_RSP}),
        (AdvertisingType.UNDIRECTED_SCANNABLE, False, {ADV.ADV_SCAN_IND}),
        (AdvertisingType.UNDIRECTED, True, {ADV.ADV_NONCONN_IND}),
    ],
    ids=["adv_ind-active", "adv_ind-passive", "scan_ind-active", "scan_ind-passive", "nonconn"],
)
def test_legacy_report_types_and_scan_response(
    run: Runner, advertising_type: AdvertisingType, active: bool, expected: set[int]
) -> None:
    reports, advertisements = run(observe(advertising_type, active))
    types = by_type(reports)
    assert set(types) == expected
    for event_type, data in types.items():
        assert data == (SCAN_RSP_DATA if event_type == ADV.SCAN_RSP else ADV_DATA)
    # The bumble host's own view agrees.
    assert advertisements
    connectable = advertising_type == AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE
    assert all(ad.is_connectable == connectable for ad in advertisements)
    assert all(ad.is_scannable == advertising_type.is_scannable for ad in advertisements)


@pytest.mark.parametrize(
    ("advertising_type", "expected"),
    [
        (AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE, {0b0010011, 0b0011011}),
        (AdvertisingType.UNDIRECTED_SCANNABLE, {0b0010010, 0b0011010}),
        (AdvertisingType.UNDIRECTED, {0b0010000}),
    ],
    ids=["adv_ind", "scan_ind", "nonconn"],
)
def test_extended_scanner_gets_extended_reports_for_legacy_pdus(
    run: Runner, advertising_type: AdvertisingType, expected: set[int]
) -> None:
    reports, _ = run(observe(advertising_type, active=True, extended_scanner=True))
    types = by_type(reports)
    assert set(types) == expected
    for event_type, data in types.items():
        is_scan_response = bool(event_type & 0b1000)
        assert data == (SCAN_RSP_DATA if is_scan_response else ADV_DATA)
