"""Radio timing model (``vradio.timing``): advertising and connection events."""

from __future__ import annotations

import asyncio

import pytest
from bumble import hci
from vradio.radio import VirtualRadio
from vradio.timing import (
    MAX_CONNECTION_EVENT_INTERVAL_S,
    MAX_FIRST_ADVERTISING_EVENT_DELAY_S,
    ConnectionEvents,
    connection_event_interval_s,
)
from vradio_testlib import Runner, TimedHost, wait_until

PERIPHERAL = hci.Address("C3:00:00:00:00:01", hci.Address.RANDOM_DEVICE_ADDRESS)
CENTRAL = hci.Address("C3:00:00:00:00:02", hci.Address.RANDOM_DEVICE_ADDRESS)
RANDOM = hci.OwnAddressType.RANDOM
# Timer granularity: an event may be seen this much early.
SLACK_S = 0.002
# No upper bounds on observed times: a loaded machine runs timers late by any
# amount.  The schedule is checked exactly where the model computes it (the
# timers it sets, ConnectionEvents.scheduled_at); observed times only never
# early, and in the order the schedule gives.
CONN_INTERVAL = 24  # 30 ms, NimBLE's default minimum


async def setup_hosts(radio: VirtualRadio) -> tuple[TimedHost, TimedHost]:
    peripheral = TimedHost(radio.add_controller("peripheral"))
    central = TimedHost(radio.add_controller("central"))
    for host, address in ((peripheral, PERIPHERAL), (central, CENTRAL)):
        await host.command(hci.HCI_LE_Set_Random_Address_Command(random_address=address))
    return peripheral, central


async def set_advertising_parameters(host: TimedHost, interval: int) -> None:
    await host.command(
        hci.HCI_LE_Set_Advertising_Parameters_Command(
            advertising_interval_min=interval,
            advertising_interval_max=interval,
            advertising_type=0,  # ADV_IND
            own_address_type=RANDOM,
            peer_address_type=0,
            peer_address=hci.Address.ANY,
            advertising_channel_map=7,
            advertising_filter_policy=0,
        )
    )


def create_connection(interval: int = CONN_INTERVAL) -> hci.HCI_LE_Create_Connection_Command:
    return hci.HCI_LE_Create_Connection_Command(
        le_scan_interval=96,
        le_scan_window=48,
        initiator_filter_policy=0,
        peer_address_type=PERIPHERAL.address_type,
        peer_address=PERIPHERAL,
        own_address_type=RANDOM,
        connection_interval_min=interval,
        connection_interval_max=interval,
        max_latency=0,
        supervision_timeout=400,
        min_ce_length=0,
        max_ce_length=0,
    )


async def connect(
    radio: VirtualRadio, adv_interval: int = 32, conn_interval: int = CONN_INTERVAL
) -> tuple[TimedHost, TimedHost]:
    """Central initiates first, then the peripheral advertises; both connected."""
    peripheral, central = await setup_hosts(radio)
    await set_advertising_parameters(peripheral, adv_interval)
    status = await central.command(create_connection(conn_interval))
    assert status.status == hci.HCI_COMMAND_STATUS_PENDING
    peripheral.send(hci.HCI_LE_Set_Advertising_Enable_Command(advertising_enable=1))
    await peripheral.wait_for(hci.HCI_LE_Connection_Complete_Event)
    await central.wait_for(hci.HCI_LE_Connection_Complete_Event)
    return peripheral, central


def connection_handle(host: TimedHost) -> int:
    return host.packets(hci.HCI_LE_Connection_Complete_Event)[0][1].connection_handle


def l2cap_pdu(payload: bytes, cid: int = 0x0040) -> bytes:
    return len(payload).to_bytes(2, "little") + cid.to_bytes(2, "little") + payload


def acl_packets(handle: int, pdu: bytes, size: int = 27) -> list[hci.HCI_AclDataPacket]:
    """Host-to-controller fragments of one L2CAP PDU."""
    packets = []
    for offset in range(0, len(pdu), size):
        fragment = pdu[offset : offset + size]
        pb_flag = 0b00 if offset == 0 else 0b01  # first non-flushable / continuing
        packets.append(hci.HCI_AclDataPacket(handle, pb_flag, 0, len(fragment), fragment))
    return packets


def received_pdus(host: TimedHost) -> list[tuple[float, bytes]]:
    """Reassembled L2CAP PDUs the host received, with the time of their last fragment."""
    pdus: list[tuple[float, bytes]] = []
    current = b""
    for when, packet in host.packets(hci.HCI_AclDataPacket):
        current = packet.data if packet.pb_flag == 0b10 else current + packet.data
        if len(current) >= 4 and len(current) - 4 == int.from_bytes(current[:2], "little"):
            pdus.append((when, current))
            current = b""
    return pdus


def completed_count(host: TimedHost, handle: int) -> int:
    total = 0
    for _, event in host.packets(hci.HCI_Number_Of_Completed_Packets_Event):
        for h, n in zip(event.connection_handles, event.num_completed_packets, strict=True):
            total += n if h == handle else 0
    return total


@pytest.mark.parametrize(
    ("adv_interval", "expected_delay_s"),
    [(32, 0.020), (320, MAX_FIRST_ADVERTISING_EVENT_DELAY_S)],
    ids=["20ms", "200ms_capped"],
)
def test_pending_initiator_connects_at_first_advertising_event_not_at_enable(
    run: Runner, adv_interval: int, expected_delay_s: float
) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            loop = asyncio.get_running_loop()
            peripheral, central = await setup_hosts(radio)
            await set_advertising_parameters(peripheral, adv_interval)
            await central.command(create_connection())
            before = loop.time()
            await peripheral.command(hci.HCI_LE_Set_Advertising_Enable_Command(1))
            after = loop.time()
            # Scheduled, not yet happened: the first advertising event.
            timer = peripheral.controller.le_legacy_advertiser.timer_handle
            assert isinstance(timer, asyncio.TimerHandle)
            assert before + expected_delay_s <= timer.when() <= after + expected_delay_s
            assert not peripheral.packets(hci.HCI_LE_Connection_Complete_Event)
            await peripheral.wait_for(hci.HCI_LE_Connection_Complete_Event)
            await central.wait_for(hci.HCI_LE_Connection_Complete_Event)
            complete = [
                (t, e)
                for t, e in peripheral.packets(hci.HCI_Command_Complete_Event)
                if e.command_opcode == hci.HCI_LE_SET_ADVERTISING_ENABLE_COMMAND
            ]
            assert len(complete) == 1
            enabled_at = complete[0][0]
            connected_at, event = peripheral.packets(hci.HCI_LE_Connection_Complete_Event)[0]
            assert event.status == hci.HCI_ErrorCode.SUCCESS
            # The host sees its Command Complete first, then the connection one
            # advertising event later, never within the enable command itself.
            log = [p for _, p in peripheral.log]
            assert log.index(complete[0][1]) < log.index(event)
            assert connected_at - enabled_at >= expected_delay_s - SLACK_S
            # Both ends learn of the connection from the same advertising event.
            central_at = central.packets(hci.HCI_LE_Connection_Complete_Event)[0][0]
            assert central_at >= enabled_at + expected_delay_s - SLACK_S

    run(scenario())


def test_first_acl_data_arrives_at_first_connection_event_then_within_one_interval(
    run: Runner,
) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            peripheral, central = await connect(radio)
            interval_s = connection_event_interval_s(CONN_INTERVAL)
            connected_at = central.packets(hci.HCI_LE_Connection_Complete_Event)[0][0]
            handle = connection_handle(central)
            # Sent right after LE Connection Complete, like a central host's
            # first L2CAP request: it can only go at the first connection event.
            first = l2cap_pdu(b"first")
            for packet in acl_packets(handle, first):
                central.send(packet)
            sent_at = asyncio.get_running_loop().time()
            events = central.controller.le_connections[PERIPHERAL].events
            # Scheduled for the first connection event, one interval after the
            # connection (whenever the host sent it before that).
            assert events.scheduled_at == pytest.approx(events.anchor + interval_s)
            when, pdu = (await wait_for_pdus(peripheral, 1))[0]
            assert pdu == first
            assert when - connected_at >= interval_s - SLACK_S
            # Later data: latency of at most one connection interval.
            await asyncio.sleep(interval_s * 0.4)
            sent_at = asyncio.get_running_loop().time()
            for packet in acl_packets(handle, l2cap_pdu(b"second")):
                central.send(packet)
            scheduled = events.scheduled_at
            assert scheduled == pytest.approx(events.next_event_time(sent_at))
            assert sent_at < scheduled <= sent_at + interval_s
            when, _ = (await wait_for_pdus(peripheral, 2))[1]
            assert when >= scheduled - SLACK_S

    run(scenario())


async def wait_for_pdus(host: TimedHost, count: int) -> list[tuple[float, bytes]]:
    await wait_until(lambda: len(received_pdus(host)) >= count, 2.0)
    return received_pdus(host)


def test_order_preserved_and_completed_packets_reported_at_transmission(run: Runner) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            peripheral, central = await connect(radio)
            interval_s = connection_event_interval_s(CONN_INTERVAL)
            handle = connection_handle(central)
            p_handle = connection_handle(peripheral)
            pdus = [l2cap_pdu(bytes([n]) * (10 + 17 * n)) for n in range(12)]
            sent = 0
            for index, pdu in enumerate(pdus):
                for packet in acl_packets(handle, pdu):
                    central.send(packet)
                    sent += 1
                # And the other way, interleaved, to check both directions.
                for packet in acl_packets(p_handle, pdu):
                    peripheral.send(packet)
                if index % 4 == 3 and index + 1 < len(pdus):  # spread over several events
                    await asyncio.sleep(interval_s * 0.7)
            # Nothing is reported completed before it went on air.
            assert completed_count(central, handle) < sent
            received = await wait_for_pdus(peripheral, len(pdus))
            assert [pdu for _, pdu in received] == pdus
            assert [pdu for _, pdu in await wait_for_pdus(central, len(pdus))] == pdus
            await wait_until(lambda: completed_count(central, handle) == sent)
            # Completion is reported when the data is transmitted, not before.
            first_completion = central.packets(hci.HCI_Number_Of_Completed_Packets_Event)[0][0]
            assert first_completion >= received[0][0] - SLACK_S
            await asyncio.sleep(interval_s * 2)
            assert completed_count(central, handle) == sent

    run(scenario())


def test_data_sent_before_disconnect_still_arrives_and_no_completions_after(
    run: Runner,
) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            peripheral, central = await connect(radio)
            handle = connection_handle(central)
            pdu = l2cap_pdu(b"last words" * 8)
            for packet in acl_packets(handle, pdu):
                central.send(packet)
            central.send(hci.HCI_Disconnect_Command(connection_handle=handle, reason=0x13))
            await peripheral.wait_for(hci.HCI_Disconnection_Complete_Event)
            await central.wait_for(hci.HCI_Disconnection_Complete_Event)
            # The peer got the data, then the termination, in that order.
            kinds = [
                type(p)
                for _, p in peripheral.log
                if isinstance(p, hci.HCI_AclDataPacket | hci.HCI_Disconnection_Complete_Event)
            ]
            assert kinds[-1] is hci.HCI_Disconnection_Complete_Event
            assert [p for _, p in received_pdus(peripheral)] == [pdu]
            # Locally the buffers were reclaimed with Disconnection Complete: no
            # completion may follow it for that (reusable) handle.
            await asyncio.sleep(MAX_CONNECTION_EVENT_INTERVAL_S * 2)
            log = [p for _, p in central.log]
            done = next(
                i for i, p in enumerate(log) if isinstance(p, hci.HCI_Disconnection_Complete_Event)
            )
            assert not any(
                isinstance(p, hci.HCI_Number_Of_Completed_Packets_Event) for p in log[done:]
            )

    run(scenario())


def test_connection_events_grid_and_interval_update(run: Runner) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        events = ConnectionEvents(CONN_INTERVAL)
        interval_s = events.interval_s
        assert interval_s == pytest.approx(0.030)
        anchor = events.anchor
        # Never at the anchor (connection creation) itself.
        assert events.next_event_time(anchor) == pytest.approx(anchor + interval_s)
        assert events.next_event_time(anchor + 0.001) == pytest.approx(anchor + interval_s)
        assert events.next_event_time(anchor + interval_s * 1.5) == pytest.approx(
            anchor + 2 * interval_s
        )
        ran: list[tuple[str, float]] = []
        for name in "abc":
            events.submit(lambda name=name: ran.append((name, loop.time())))
        await wait_until(lambda: len(ran) == 3)
        assert [name for name, _ in ran] == ["a", "b", "c"]
        assert ran[0][1] >= anchor + interval_s - SLACK_S
        # Long intervals are modelled as at most 50 ms; short ones as at least 7.5 ms.
        assert connection_event_interval_s(3200) == MAX_CONNECTION_EVENT_INTERVAL_S
        assert connection_event_interval_s(1) == pytest.approx(0.0075)
        events.set_interval(8)  # 10 ms, from the last event on
        assert events.interval_s == pytest.approx(0.010)
        assert events.anchor >= anchor + interval_s - 1e-9
        events.close()
        events.submit(lambda: ran.append(("late", 0.0)))
        await asyncio.sleep(0.05)
        assert len(ran) == 3

    run(scenario())
