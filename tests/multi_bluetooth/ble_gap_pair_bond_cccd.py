# Test that a bonded central's subscription (its CCCD) persists, as the Core
# spec requires for bonded peers (Vol 3, Part G, 3.3.3.3): a central that
# subscribed once gets notifications after reconnecting and after the
# peripheral restarts (hard), without subscribing again; another central
# does not inherit the subscription.
#
# The peripheral updates the characteristic with gatts_write(..., True),
# which notifies the subscribed centrals only, then tells the central, which
# reads the characteristic: ATT delivers a notification sent before the read
# response ahead of it, so the central prints every notification the update
# caused (or none) without waiting for a timeout.
#
# The central plays two devices (bond files): the bonded one, then, after
# a restart, a stranger with another address that never subscribed.

from micropython import const
import time, machine, bluetooth, os, sys

TIMEOUT_MS = 5000

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GATTC_CHARACTERISTIC_RESULT = const(11)
_IRQ_GATTC_CHARACTERISTIC_DONE = const(12)
_IRQ_GATTC_READ_RESULT = const(15)
_IRQ_GATTC_READ_DONE = const(16)
_IRQ_GATTC_WRITE_DONE = const(17)
_IRQ_GATTC_NOTIFY = const(18)
_IRQ_ENCRYPTION_UPDATE = const(28)

SERVICE_UUID = bluetooth.UUID("A5A5A5A5-FFFF-9999-1111-5A5A5A5A5A5A")
CHAR_UUID = bluetooth.UUID("00000000-1111-2222-3333-444444444444")
_FLAG_READ = const(0x0002)
_FLAG_NOTIFY = const(0x0010)
CHAR = (CHAR_UUID, _FLAG_READ | _FLAG_NOTIFY)
SERVICE = (SERVICE_UUID, (CHAR,))

waiting_events = {}
notifications = []


def irq(event, data):
    if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
        waiting_events[event] = data[0]
    elif event == _IRQ_ENCRYPTION_UPDATE:
        waiting_events[event] = data[1:4]
    elif event == _IRQ_GATTC_CHARACTERISTIC_RESULT:
        if data[4] == CHAR_UUID:
            waiting_events[event] = data[2]  # value handle
        return
    elif event == _IRQ_GATTC_NOTIFY:
        notifications.append(bytes(data[2]))
        return
    elif event == _IRQ_GATTC_READ_RESULT:
        return
    if event not in waiting_events:
        waiting_events[event] = None


def wait_for_event(event, timeout_ms):
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
        if event in waiting_events:
            return waiting_events.pop(event)
        machine.idle()
    raise ValueError("Timeout waiting for {}".format(event))


def bond_file(name):
    return "bond_test_cccd_{}".format(name)


def remove(path):
    for suffix in ("", ".new", ".rsv"):
        try:
            os.remove(path + suffix)
        except OSError:
            pass


def start(name, fresh=False):
    try:
        ble.config(bond_file=bond_file(name))
    except ValueError:
        # This build keeps no bonds of its own (no bond store).
        multitest.skip()
    if fresh:
        remove(bond_file(name))
    ble.config(bond=True, le_secure=True, mitm=False)
    ble.active(1)
    ble.irq(irq)


def require_bond_store():
    # Skip, before multitest.next(), on a stack that keeps no bonds of its
    # own (a build without a bond store), whichever instance runs it.
    try:
        ble.config("bond_file")
    except ValueError:
        multitest.skip()


def restart(resume):
    # Hard restart: unix instances are killed by the test runner, boards reset.
    multitest.expect_reboot(resume, 0)
    if hasattr(machine, "reset"):
        machine.reset()
    while True:
        time.sleep_ms(10)


# Peripheral: one connection per phase; updates the characteristic once the
# central says it is ready for it.  A central that has restarted says when
# it is up again.
def serve(phase, handle):
    if phase == "stranger":
        multitest.wait("central up {}".format(phase))
    ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
    multitest.broadcast("peripheral ready {}".format(phase))
    wait_for_event(_IRQ_CENTRAL_CONNECT, TIMEOUT_MS)
    if phase != "stranger":
        # A bonded central's subscription is restored with its encryption: an
        # update before that would be kept as "changed while disconnected"
        # and notified again at the next restoration.
        wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS)
    multitest.wait("central ready {}".format(phase))
    ble.gatts_write(handle, phase, True)
    multitest.broadcast("updated {}".format(phase))
    wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)


def register():
    ((handle,),) = ble.gatts_register_services((SERVICE,))
    return handle


def instance0():
    require_bond_store()
    start("peripheral", fresh=True)
    handle = register()
    multitest.globals(BDADDR=ble.config("mac"))
    multitest.next()
    for phase in ("subscribe", "reconnect"):
        serve(phase, handle)
    restart("instance0_restarted")


def instance0_restarted():
    start("peripheral")
    handle = register()
    for phase in ("restart", "stranger"):
        serve(phase, handle)
    ble.active(0)
    remove(bond_file("peripheral"))


# Central: the bonded device subscribes in the first phase only.
def connect(phase, pair):
    if phase == "stranger":
        multitest.broadcast("central up {}".format(phase))
    multitest.wait("peripheral ready {}".format(phase))
    ble.gap_connect(*BDADDR)
    conn_handle = wait_for_event(_IRQ_PERIPHERAL_CONNECT, TIMEOUT_MS)
    if pair:
        ble.gap_pair(conn_handle)
        print(phase, "encryption", wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS))
    return conn_handle


def discover(conn_handle):
    ble.gattc_discover_characteristics(conn_handle, 1, 65535)
    value_handle = wait_for_event(_IRQ_GATTC_CHARACTERISTIC_RESULT, TIMEOUT_MS)
    wait_for_event(_IRQ_GATTC_CHARACTERISTIC_DONE, TIMEOUT_MS)
    return value_handle


# When NimBLE restores a bonded central's subscription it may notify the
# characteristic's current value, if an update might have been missed (the
# CCCD's "value changed" flag): a repeat of the state, allowed, so it is
# left out; any other notification is printed.
def receive(phase, conn_handle, value_handle, current=None):
    notifications.clear()
    multitest.broadcast("central ready {}".format(phase))
    multitest.wait("updated {}".format(phase))
    ble.gattc_read(conn_handle, value_handle)
    wait_for_event(_IRQ_GATTC_READ_DONE, TIMEOUT_MS)
    print(phase, "notified", [n for n in notifications if n != current])
    ble.gap_disconnect(conn_handle)
    wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, TIMEOUT_MS)


def instance1():
    require_bond_store()
    start("central", fresh=True)
    multitest.next()
    conn_handle = connect("subscribe", pair=True)
    value_handle = discover(conn_handle)
    # Both stacks put the CCCD right after the characteristic's value.
    ble.gattc_write(conn_handle, value_handle + 1, b"\x01\x00", 1)
    wait_for_event(_IRQ_GATTC_WRITE_DONE, TIMEOUT_MS)
    receive("subscribe", conn_handle, value_handle)
    # The value when the central comes back: the last update, or none after
    # the peripheral's restart (values are not kept).
    for phase, current in (("reconnect", b"subscribe"), ("restart", b"")):
        receive(phase, connect(phase, pair=True), value_handle, current)
    # Another device: another bond file, so another address, never bonded.
    restart("instance1_stranger")


def instance1_stranger():
    start("stranger", fresh=True)
    conn_handle = connect("stranger", pair=False)
    receive("stranger", conn_handle, discover(conn_handle))
    ble.active(0)
    for name in ("central", "stranger"):
        remove(bond_file(name))


ble = bluetooth.BLE()
