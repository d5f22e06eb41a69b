"""Drive an in-process bumble Device as an independent peer of a host under test.

The device (from :meth:`vradio.radio.VirtualRadio.add_device`) keeps its keys
in its own bumble ``KeyStore`` and runs its own SMP, so it bonds, reconnects
and re-encrypts like a phone would.  These helpers cover what a bond test does
with it: pair with Just Works (legacy or LE Secure Connections), connect as
central or accept as peripheral, scan for an advertiser, resolve a resolvable
private address with the IRKs it stored, and record every SMP and encryption
event (:class:`SecurityLog`) so that "no new pairing happened" can be asserted.

Every wait is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from bumble import hci, smp
from bumble.device import Advertisement, Connection, Device
from bumble.keys import KeyStore, PairingKeys
from bumble.pairing import PairingConfig, PairingDelegate

DEFAULT_TIMEOUT_S = 5.0
ADV_INTERVAL_MS = 20


def use_just_works(device: Device, sc: bool, bonding: bool = True) -> None:
    """Pair without user interaction: legacy or (``sc``) LE Secure Connections."""
    delegate = PairingDelegate(io_capability=PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT)
    device.pairing_config_factory = lambda _connection: PairingConfig(
        sc=sc, mitm=False, bonding=bonding, delegate=delegate
    )


def own_address_type(public: bool) -> hci.OwnAddressType:
    return hci.OwnAddressType.PUBLIC if public else hci.OwnAddressType.RANDOM


def own_address(device: Device, public: bool) -> hci.Address:
    """The address ``device`` uses on air with ``own_address_type(public)``."""
    return device.public_address if public else device.random_address


@dataclass
class ConnectionLog:
    """Security-relevant events of one connection, in order of arrival."""

    connection: Connection
    events: list[tuple[str, object]] = field(default_factory=list)
    disconnected: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def record(self, name: str, value: object = None) -> None:
        self.events.append((name, value))
        self._changed.set()

    async def wait_event(
        self, name: str, count: int = 1, timeout: float = DEFAULT_TIMEOUT_S
    ) -> object:
        """Wait until ``count`` events called ``name`` happened; the last one's value."""

        async def poll() -> object:
            while True:
                values = [value for event, value in self.events if event == name]
                if len(values) >= count:
                    return values[count - 1]
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(poll(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no {name!r} #{count} within {timeout} s: {self.events}") from None


class SecurityLog:
    """Records SMP and encryption events on every connection of a device.

    ``pairing_starts`` counts SMP pairings that began (bumble's
    ``pairing_start``: a Pairing Request sent or received), which must not
    grow when a bonded peer reconnects.
    """

    def __init__(self, device: Device) -> None:
        self.connections: list[ConnectionLog] = []
        device.on(Device.EVENT_CONNECTION, self._on_connection)

    @property
    def pairing_starts(self) -> int:
        return sum(log.names().count("pairing_start") for log in self.connections)

    @property
    def pairings(self) -> list[PairingKeys]:
        return [keys for log in self.connections for name, keys in log.events if name == "pairing"]

    @property
    def pairing_failures(self) -> list[object]:
        return [
            reason
            for log in self.connections
            for name, reason in log.events
            if name == "pairing_failure"
        ]

    def of(self, connection: Connection) -> ConnectionLog:
        for log in self.connections:
            if log.connection is connection:
                return log
        raise KeyError(connection)

    def _on_connection(self, connection: Connection) -> None:
        log = ConnectionLog(connection)
        self.connections.append(log)

        def record(name: str) -> Callable[..., None]:
            def handler(*args: object) -> None:
                log.record(name, args[0] if args else None)

            return handler

        connection.on(Connection.EVENT_PAIRING_START, record("pairing_start"))
        connection.on(Connection.EVENT_PAIRING, record("pairing"))
        connection.on(Connection.EVENT_PAIRING_FAILURE, record("pairing_failure"))
        connection.on(
            Connection.EVENT_CONNECTION_ENCRYPTION_CHANGE,
            lambda: log.record("encryption_change", connection.is_encrypted),
        )
        connection.on(Connection.EVENT_CONNECTION_ENCRYPTION_FAILURE, record("encryption_failure"))

        def on_disconnection(reason: int) -> None:
            log.record("disconnection", reason)
            if not log.disconnected.done():
                log.disconnected.set_result(reason)

        connection.on(Connection.EVENT_DISCONNECTION, on_disconnection)


async def connect(
    central: Device,
    address: hci.Address,
    public: bool,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Connection:
    """Connect to an advertiser at ``address`` using our public or random address."""
    return await central.connect(
        address, own_address_type=own_address_type(public), timeout=timeout
    )


async def advertise_until_connected(
    peripheral: Device,
    public: bool,
    start_central: Callable[[], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Connection:
    """Advertise connectably until a central connects; return that connection.

    ``start_central`` (sync or async) is called once advertising is on, to make
    the other side connect.
    """
    incoming: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()

    def on_connection(connection: Connection) -> None:
        if not incoming.done():
            incoming.set_result(connection)

    peripheral.on(Device.EVENT_CONNECTION, on_connection)
    try:
        await peripheral.start_advertising(
            own_address_type=own_address_type(public),
            advertising_interval_min=ADV_INTERVAL_MS,
            advertising_interval_max=ADV_INTERVAL_MS,
        )
        if start_central is not None:
            started = start_central()
            if asyncio.iscoroutine(started):
                await started
        return await asyncio.wait_for(incoming, timeout)
    finally:
        peripheral.remove_listener(Device.EVENT_CONNECTION, on_connection)
        # A connection ends legacy advertising in the controller; a timeout
        # must not leave it running for the next step.
        if peripheral.is_advertising:
            await peripheral.stop_advertising()


async def next_advertisement(
    scanner: Device,
    accept: Callable[[Advertisement], bool],
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Advertisement:
    """Scan (actively) until an advertisement ``accept`` likes is received."""
    found: asyncio.Future[Advertisement] = asyncio.get_running_loop().create_future()

    def on_advertisement(advertisement: Advertisement) -> None:
        if not found.done() and accept(advertisement):
            found.set_result(advertisement)

    scanner.on(Device.EVENT_ADVERTISEMENT, on_advertisement)
    try:
        await scanner.start_scanning(filter_duplicates=False)
        return await asyncio.wait_for(found, timeout)
    finally:
        scanner.remove_listener(Device.EVENT_ADVERTISEMENT, on_advertisement)
        if scanner.is_scanning:
            await scanner.stop_scanning()


def advertised_name(advertisement: Advertisement) -> str | None:
    name = advertisement.data.get(advertisement.data.COMPLETE_LOCAL_NAME)
    return name if isinstance(name, str) else None


async def resolve(keystore: KeyStore, address: hci.Address) -> hci.Address | None:
    """The identity address of the bonded peer ``address`` belongs to, or None.

    For a resolvable private address this checks it against every IRK in the
    store (as bumble itself does); any other address is only "resolved" by
    the keys being stored under it.
    """
    if address.is_resolvable:
        return smp.AddressResolver(await keystore.get_resolving_keys()).resolve(address)
    return address if await keystore.get(str(address)) is not None else None


async def wait_disconnected(log: ConnectionLog, timeout: float = DEFAULT_TIMEOUT_S) -> int:
    """Wait for the connection's Disconnection Complete; return its reason."""
    return await asyncio.wait_for(asyncio.shield(log.disconnected), timeout)


async def disconnect(log: ConnectionLog, timeout: float = DEFAULT_TIMEOUT_S) -> int:
    """Disconnect (if still connected) and return the reason reported for it."""
    if not log.disconnected.done():
        await log.connection.disconnect()
    return await wait_disconnected(log, timeout)
