"""Two bumble Devices pair, bond and re-encrypt through the fixed controllers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bumble import hci
from bumble.device import Connection, Device
from bumble.keys import JsonKeyStore
from bumble.pairing import PairingConfig
from vradio.radio import VirtualRadio
from vradio_testlib import Runner

PUBLIC = {"central": "28:CD:C1:00:00:01", "peripheral": "28:CD:C1:00:00:02"}
STATIC = {"central": "C1:00:00:00:00:01", "peripheral": "C1:00:00:00:00:02"}
ADV_INTERVAL_MS = 20


class PairingCounter:
    """Counts pairings started on a device (must stay 1 across reconnections)."""

    def __init__(self, device: Device) -> None:
        self.count = 0
        device.on("pairing_start", self._on_start)

    def _on_start(self, _connection: Connection) -> None:
        self.count += 1


async def make_device(
    radio: VirtualRadio, role: str, public: bool, sc: bool, keystore_dir: Path
) -> Device:
    controller = radio.add_controller(role, PUBLIC[role] if public else None)
    keystore = JsonKeyStore(namespace=role, filename=str(keystore_dir / f"{role}.json"))
    device = await radio.add_device(controller, role, STATIC[role], keystore=keystore)
    device.pairing_config_factory = lambda _connection: PairingConfig(
        sc=sc, mitm=False, bonding=True
    )
    return device


async def connect(
    central: Device, peripheral: Device, own: hci.OwnAddressType
) -> tuple[Connection, Connection]:
    """Advertise on the peripheral, connect from the central; return both ends."""
    incoming: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    peripheral.once("connection", incoming.set_result)
    await peripheral.start_advertising(
        own_address_type=own,
        advertising_interval_min=ADV_INTERVAL_MS,
        advertising_interval_max=ADV_INTERVAL_MS,
    )
    target = (
        peripheral.public_address
        if own == hci.OwnAddressType.PUBLIC
        else peripheral.random_address
    )
    outgoing = await central.connect(target, own_address_type=own, timeout=3.0)
    return outgoing, await asyncio.wait_for(incoming, 3.0)


def encryption_change(connection: Connection) -> asyncio.Future[None]:
    """Future resolved by the next encryption change (listen before triggering it)."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    connection.once("connection_encryption_change", lambda: done.set_result(None))
    return done


async def disconnect(central_side: Connection, peripheral_side: Connection) -> None:
    gone: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    peripheral_side.once("disconnection", gone.set_result)
    await central_side.disconnect()
    assert (
        await asyncio.wait_for(gone, 3.0)
        == hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR
    )


@pytest.mark.parametrize("sc", [False, True], ids=["legacy", "secure-connections"])
@pytest.mark.parametrize("public", [True, False], ids=["public", "random-static"])
def test_pair_bond_reconnect_reencrypt(
    run: Runner, tmp_path: Path, public: bool, sc: bool
) -> None:
    own = hci.OwnAddressType.PUBLIC if public else hci.OwnAddressType.RANDOM

    async def scenario() -> None:
        async with VirtualRadio() as radio:
            central = await make_device(radio, "central", public, sc, tmp_path)
            peripheral = await make_device(radio, "peripheral", public, sc, tmp_path)
            if public:
                assert central.public_address == hci.Address(PUBLIC["central"], 0)
            counters = [PairingCounter(central), PairingCounter(peripheral)]

            # First connection: pair and bond.
            outgoing, incoming = await connect(central, peripheral, own)
            assert outgoing.peer_address.is_public == public
            assert incoming.peer_address.is_public == public
            peripheral_encrypted = encryption_change(incoming)
            await asyncio.wait_for(outgoing.pair(), 5.0)
            await asyncio.wait_for(peripheral_encrypted, 3.0)
            assert outgoing.is_encrypted and incoming.is_encrypted
            assert await central.keystore.get(str(outgoing.peer_address)) is not None
            assert await peripheral.keystore.get(str(incoming.peer_address)) is not None
            await disconnect(outgoing, incoming)

            # Second connection: encrypt with the bonded keys, no new pairing.
            outgoing, incoming = await connect(central, peripheral, own)
            peripheral_encrypted = encryption_change(incoming)
            await asyncio.wait_for(outgoing.encrypt(), 5.0)
            await asyncio.wait_for(peripheral_encrypted, 3.0)
            assert outgoing.is_encrypted and incoming.is_encrypted
            assert [counter.count for counter in counters] == [1, 1]
            await disconnect(outgoing, incoming)

    run(scenario())
