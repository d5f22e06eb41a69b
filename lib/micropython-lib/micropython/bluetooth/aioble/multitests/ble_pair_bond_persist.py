# Test that a bond made with aioble survives a restart of either side when
# aioble.security keeps the secrets (a JSON file per instance, named once
# with load_secrets()): the central pairs with connection.pair(bond=True),
# then the peripheral stops BLE with aioble.stop() and lets aioble start it
# again, then it restarts (unix: killed, like a power cut), then the central
# restarts (unix: a clean exit).  After each of these the central reconnects
# and connection.pair() re-encrypts the link with the stored keys: both sides
# see it encrypted and bonded, and no secret is written (no new pairing).
#
# A stack that also keeps bonds of its own (BTstack's bond_file) is told not
# to, so that aioble's file is all that carries the bond, as on NimBLE.

import sys

# ruff: noqa: E402, F821
sys.path.append("")

import asyncio
import json
import os
import time

import aioble
import aioble.core
import aioble.security
import bluetooth
import machine
from micropython import const

TIMEOUT_MS = 5000

_IRQ_SET_SECRET = const(30)

SERVICE_UUID = bluetooth.UUID("A5A5A5A5-FFFF-9999-1111-5A5A5A5A5A5A")
CHAR_UUID = bluetooth.UUID("00000000-1111-2222-3333-444444444444")

PHASES = ("pair", "active", "peripheral restarted", "central restarted")

# Secrets the stack asked to store (or delete) since this phase connected.
secret_writes = 0


def counting_irq(event, data):
    global secret_writes
    if event == _IRQ_SET_SECRET:
        secret_writes += 1
    return aioble.core.ble_irq(event, data)


def secrets_file(instance):
    return f"ble_pair_bond_persist_{instance}.json"


def start(instance, fresh=False):
    if fresh:
        try:
            os.remove(secrets_file(instance))
        except OSError:
            pass
    aioble.security.load_secrets(secrets_file(instance))
    try:
        aioble.core.ble.config(bond_file=None)
    except ValueError:
        # This stack keeps bonds only through the secret handler (NimBLE).
        pass
    aioble.core.ble.irq(counting_irq)
    aioble.config(bond=True, le_secure=True, mitm=False)


def saved_secrets(instance):
    with open(secrets_file(instance)) as f:
        return len(json.load(f))


def restart(resume, soft):
    # Unix instances are restarted by the test runner: killed (hard) or
    # after they exit by themselves (soft).  Boards reset.
    multitest.expect_reboot(resume, 1000 if soft else 0)
    if soft:
        aioble.stop()
        sys.exit()
    if hasattr(machine, "reset"):
        machine.reset()
    while True:
        time.sleep_ms(10)


async def wait_encrypted(connection):
    t0 = time.ticks_ms()
    while not connection.encrypted:
        if time.ticks_diff(time.ticks_ms(), t0) > TIMEOUT_MS:
            raise OSError("not encrypted")
        await asyncio.sleep_ms(10)


def print_link(phase, connection):
    print(
        phase,
        "encrypted",
        bool(connection.encrypted),
        "bonded",
        bool(connection.bonded),
        "key size",
        connection.key_size,
    )


# Acting in peripheral role: serves one connection per phase.
async def serve(phase):
    global secret_writes
    service = aioble.Service(SERVICE_UUID)
    characteristic = aioble.Characteristic(service, CHAR_UUID, read=True)
    aioble.register_services(service)
    # Short enough for one read at the default MTU.
    characteristic.write(f"periph {PHASES.index(phase)}")
    multitest.broadcast("peripheral ready " + phase)
    connection = await aioble.advertise(
        20_000, adv_data=b"\x02\x01\x06\x04\xffMPY", timeout_ms=TIMEOUT_MS
    )
    secret_writes = 0
    await wait_encrypted(connection)
    print_link(phase, connection)
    await connection.disconnected(timeout_ms=TIMEOUT_MS)
    print(phase, "secrets written", secret_writes > 0)


def instance0():
    global BDADDR
    start(0, fresh=True)
    # After a restart the runner gives this instance BDADDR too.
    BDADDR = aioble.config("mac")
    multitest.globals(BDADDR=BDADDR)
    multitest.next()
    asyncio.run(serve("pair"))
    # BLE off; aioble turns it on again by itself, loading the secrets again.
    aioble.stop()
    print("active same address", aioble.config("mac") == BDADDR)
    asyncio.run(serve("active"))
    # Wait for the secrets to be saved (aioble schedules that).
    time.sleep_ms(100)
    print("saved secrets", saved_secrets(0) > 0)
    restart("instance0_restarted", soft=False)


def instance0_restarted():
    try:
        start(0)
        print("same address", aioble.config("mac") == BDADDR)
        asyncio.run(serve("peripheral restarted"))
        multitest.wait("central restarted")
        asyncio.run(serve("central restarted"))
    finally:
        aioble.stop()


# Acting in central role: connects and pairs once per phase.
async def connect_and_pair(phase):
    global secret_writes
    multitest.wait("peripheral ready " + phase)
    device = aioble.Device(*BDADDR)
    connection = await device.connect(timeout_ms=TIMEOUT_MS)
    secret_writes = 0
    await connection.pair(bond=True, le_secure=True, timeout_ms=TIMEOUT_MS)
    print_link(phase, connection)
    service = await connection.service(SERVICE_UUID)
    characteristic = await service.characteristic(CHAR_UUID)
    print(phase, "read", await characteristic.read(timeout_ms=TIMEOUT_MS))
    await connection.disconnect(timeout_ms=TIMEOUT_MS)
    print(phase, "secrets written", secret_writes > 0)


def instance1():
    start(1, fresh=True)
    multitest.next()
    asyncio.run(connect_and_pair("pair"))
    asyncio.run(connect_and_pair("active"))
    asyncio.run(connect_and_pair("peripheral restarted"))
    time.sleep_ms(100)
    print("saved secrets", saved_secrets(1) > 0)
    restart("instance1_restarted", soft=True)


def instance1_restarted():
    try:
        start(1)
        multitest.broadcast("central restarted")
        asyncio.run(connect_and_pair("central restarted"))
    finally:
        aioble.stop()
