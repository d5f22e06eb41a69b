"""vradio.peer: the helpers that drive a bumble Device as a bond test's peer.

Two in-process bumble Devices stand in for the host under test, so these run
without any firmware.
"""

from __future__ import annotations

from pathlib import Path

from bumble import hci
from bumble.device import Device, DeviceConfiguration
from bumble.keys import JsonKeyStore, MemoryKeyStore
from vradio.peer import (
    SecurityLog,
    advertise_until_connected,
    advertised_name,
    connect,
    disconnect,
    next_advertisement,
    resolve,
    use_just_works,
    wait_disconnected,
)
from vradio.radio import VirtualRadio
from vradio_testlib import Runner

CENTRAL_STATIC = "C1:00:00:00:00:01"
PERIPHERAL_STATIC = "C1:00:00:00:00:02"
PERIPHERAL_IRK = bytes(range(16))
ADV_NAME = "private"


async def two_devices(
    radio: VirtualRadio, tmp_path: Path, sc: bool, privacy: bool = False
) -> tuple[Device, Device]:
    central = await radio.add_device(
        radio.add_controller("central"),
        "central",
        CENTRAL_STATIC,
        keystore=JsonKeyStore(namespace="central", filename=str(tmp_path / "central.json")),
    )
    config = DeviceConfiguration(le_privacy_enabled=privacy, le_rpa_timeout=0, irk=PERIPHERAL_IRK)
    peripheral = await radio.add_device(
        radio.add_controller("peripheral"),
        ADV_NAME,
        PERIPHERAL_STATIC,
        keystore=MemoryKeyStore(),
        config=config,
    )
    use_just_works(central, sc)
    use_just_works(peripheral, sc)
    return central, peripheral


def test_security_log_counts_each_pairing_and_encryption(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            central, peripheral = await two_devices(radio, tmp_path, sc=True)
            log = SecurityLog(central)
            peer_log = SecurityLog(peripheral)

            async def start_central() -> None:
                await connect(central, peripheral.random_address, public=False)

            incoming = await advertise_until_connected(peripheral, False, start_central)
            [first] = log.connections
            assert peer_log.of(incoming).connection is incoming
            await first.connection.pair()
            assert log.pairing_starts == 1 and len(log.pairings) == 1
            assert first.names()[:2] == ["pairing_start", "encryption_change"]
            assert (
                await disconnect(first)
                == hci.HCI_ErrorCode.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR
            )
            reason = await wait_disconnected(peer_log.of(incoming))
            assert reason == hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR

            # Bonded: a reconnection encrypts without a pairing...
            await advertise_until_connected(peripheral, False, start_central)
            second = log.connections[1]
            await second.connection.encrypt()
            assert await second.wait_event("encryption_change") is True
            assert log.pairing_starts == 1
            await disconnect(second)

            # ...and once the central forgot the keys it pairs again: counted.
            await central.keystore.delete_all()
            await advertise_until_connected(peripheral, False, start_central)
            third = log.connections[2]
            await third.connection.pair()
            assert log.pairing_starts == 2 and log.pairing_failures == []
            assert peer_log.pairing_starts == 2
            await disconnect(third)

    run(scenario())


def test_private_advertiser_resolves_to_its_bonded_identity(run: Runner, tmp_path: Path) -> None:
    """What a phone does with a bonded device that advertises a new RPA at each boot."""

    async def scenario() -> None:
        async with VirtualRadio() as radio:
            central, peripheral = await two_devices(radio, tmp_path, sc=True, privacy=True)
            identity = hci.Address(PERIPHERAL_STATIC)
            log = SecurityLog(central)

            def ours(advertisement: object) -> bool:
                return advertised_name(advertisement) == ADV_NAME  # type: ignore[arg-type]

            async def advertised() -> hci.Address:
                await peripheral.start_advertising(
                    own_address_type=hci.OwnAddressType.RANDOM,
                    advertising_data=bytes([len(ADV_NAME) + 1, 0x09]) + ADV_NAME.encode(),
                    advertising_interval_min=20,
                    advertising_interval_max=20,
                )
                return (await next_advertisement(central, ours)).address

            first_rpa = await advertised()
            assert first_rpa.is_resolvable and first_rpa != identity
            assert await resolve(central.keystore, first_rpa) is None  # not bonded yet
            connection = await connect(central, first_rpa, public=False)
            await connection.pair()
            assert await resolve(central.keystore, first_rpa) == identity
            await disconnect(log.of(connection))

            # A reboot: a new RPA from the same IRK.
            await peripheral.power_off()
            await peripheral.power_on()
            second_rpa = await advertised()
            assert second_rpa.is_resolvable and second_rpa not in (first_rpa, identity)
            resolved = await resolve(central.keystore, second_rpa)
            assert resolved == identity and resolved is not None and resolved.is_resolved
            connection = await connect(central, second_rpa, public=False)
            await connection.encrypt()
            assert connection.is_encrypted and log.pairing_starts == 1
            await disconnect(log.of(connection))

    run(scenario())


def test_resolve_needs_the_right_irk_or_a_stored_identity(run: Runner) -> None:
    async def scenario() -> None:
        store = MemoryKeyStore()
        rpa = hci.Address.generate_private_address(PERIPHERAL_IRK)
        static = hci.Address(PERIPHERAL_STATIC)
        assert await resolve(store, rpa) is None and await resolve(store, static) is None
        from bumble.keys import PairingKeys

        other = PairingKeys(irk=PairingKeys.Key(bytes(16)))
        await store.update(str(static), other)
        assert await resolve(store, rpa) is None  # stored, but not its IRK
        assert await resolve(store, static) == static
        await store.update(str(static), PairingKeys(irk=PairingKeys.Key(PERIPHERAL_IRK)))
        assert await resolve(store, rpa) == static

    run(scenario())
