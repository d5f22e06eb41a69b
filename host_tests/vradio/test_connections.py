"""Connection set-up, refusal, cancel, reset and disconnection semantics."""

from __future__ import annotations

import asyncio

import pytest
from bumble import core, hci
from bumble.device import AdvertisingType, Connection, Device
from vradio.controller import VirtualController
from vradio.radio import VirtualRadio
from vradio_testlib import EventRecorder, Runner, wait_until

PERIPHERAL = "C3:00:00:00:00:01"
CENTRAL = "C3:00:00:00:00:02"
REFUSED_CONNECT_TIMEOUT_S = 0.5


async def pair_of_devices(
    radio: VirtualRadio,
) -> tuple[Device, VirtualController, Device, VirtualController, list[Connection]]:
    """Peripheral and central devices; the list collects peripheral-side connections."""
    peripheral_controller = radio.add_controller("peripheral")
    central_controller = radio.add_controller("central")
    peripheral = await radio.add_device(peripheral_controller, "p", PERIPHERAL)
    central = await radio.add_device(central_controller, "c", CENTRAL)
    accepted: list[Connection] = []
    peripheral.on("connection", accepted.append)
    return peripheral, peripheral_controller, central, central_controller, accepted


async def advertise(device: Device, advertising_type: AdvertisingType) -> None:
    await device.start_advertising(
        advertising_type=advertising_type,
        advertising_interval_min=20,
        advertising_interval_max=20,
    )


async def assert_connect_refused(central: Device, address: str) -> None:
    """Connecting times out; bumble then cancels, which must complete cleanly."""
    with pytest.raises((core.TimeoutError, asyncio.TimeoutError)):
        await central.connect(address, timeout=REFUSED_CONNECT_TIMEOUT_S)


@pytest.mark.parametrize(
    "advertising_type",
    [AdvertisingType.UNDIRECTED, AdvertisingType.UNDIRECTED_SCANNABLE],
    ids=["adv_nonconn_ind", "adv_scan_ind"],
)
def test_connect_to_non_connectable_advert_never_completes(
    run: Runner, advertising_type: AdvertisingType
) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            peripheral, p_ctrl, central, c_ctrl, accepted = await pair_of_devices(radio)
            await advertise(peripheral, advertising_type)
            await assert_connect_refused(central, PERIPHERAL)
            assert not accepted and not p_ctrl.le_connections and not c_ctrl.le_connections
            assert c_ctrl.pending_le_connection is None  # cancelled
            assert p_ctrl.le_legacy_advertiser.enabled  # still advertising

    run(scenario())


def test_no_half_open_link_to_stopped_advertiser_then_pending_connect_completes(
    run: Runner,
) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            peripheral, p_ctrl, central, c_ctrl, accepted = await pair_of_devices(radio)
            await advertise(peripheral, AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE)
            await peripheral.stop_advertising()
            await assert_connect_refused(central, PERIPHERAL)
            assert not accepted and not c_ctrl.le_connections and not p_ctrl.le_connections

            # A pending LE Create Connection completes once the target advertises.
            connecting = asyncio.ensure_future(central.connect(PERIPHERAL, timeout=5.0))
            await asyncio.sleep(0.2)
            assert not connecting.done() and not c_ctrl.le_connections
            await advertise(peripheral, AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE)
            connection = await asyncio.wait_for(connecting, 2.0)
            await wait_until(lambda: len(accepted) == 1)
            assert connection.peer_address == hci.Address(PERIPHERAL)
            assert accepted[0].peer_address == hci.Address(CENTRAL)
            assert not p_ctrl.le_legacy_advertiser.enabled  # stopped by the connection

    run(scenario())


def test_disconnect_reasons_on_both_sides(run: Runner) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            peripheral, _, central, _, accepted = await pair_of_devices(radio)
            await advertise(peripheral, AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE)
            connection = await central.connect(PERIPHERAL, timeout=2.0)
            await wait_until(lambda: bool(accepted))
            reasons: dict[str, int] = {}
            connection.on("disconnection", lambda reason: reasons.update(central=reason))
            accepted[0].on("disconnection", lambda reason: reasons.update(peripheral=reason))
            await connection.disconnect()
            await wait_until(lambda: len(reasons) == 2)
            assert reasons == {
                "central": hci.HCI_ErrorCode.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR,
                "peripheral": hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR,
            }

    run(scenario())


def test_reset_drops_links_and_stops_advertising_and_scanning(run: Runner) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            peripheral, _, central, c_ctrl, accepted = await pair_of_devices(radio)
            await advertise(peripheral, AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE)
            await central.connect(PERIPHERAL, timeout=2.0)
            await wait_until(lambda: bool(accepted))
            lost: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            accepted[0].once("disconnection", lost.set_result)
            await advertise(central, AdvertisingType.UNDIRECTED)
            await central.start_scanning()
            assert c_ctrl.le_legacy_advertiser.enabled and c_ctrl.le_scan_enable

            # What a restarted host does first.
            await central.host.send_sync_command(hci.HCI_Reset_Command())
            assert await asyncio.wait_for(lost, 2.0) == hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
            assert not c_ctrl.le_connections
            assert not c_ctrl.le_legacy_advertiser.enabled and not c_ctrl.le_scan_enable
            assert c_ctrl.random_address == hci.Address.ANY_RANDOM

    run(scenario())


def test_acl_data_to_host_is_fragmented_to_le_buffer_size(run: Runner) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            peripheral, p_ctrl, central, _, accepted = await pair_of_devices(radio)
            recorder = EventRecorder()
            p_ctrl.snooper = recorder
            await advertise(peripheral, AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE)
            await central.connect(PERIPHERAL, timeout=2.0)
            await wait_until(lambda: bool(accepted))
            pdu = bytes([60, 0, 0x40, 0]) + bytes(range(60))  # L2CAP to dynamic CID 0x40
            p_ctrl.on_link_acl_data(hci.Address(CENTRAL), core.PhysicalTransport.LE, pdu)
            acl = [p for p in recorder.packets if isinstance(p, hci.HCI_AclDataPacket)]
            size = p_ctrl.le_acl_data_packet_length
            assert [len(p.data) for p in acl] == [size, size, len(pdu) - 2 * size]
            assert [p.pb_flag for p in acl] == [0b10, 0b01, 0b01]
            assert b"".join(p.data for p in acl) == pdu

    run(scenario())
