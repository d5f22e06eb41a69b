# Test that a bond kept by the stack (no secret handler storing anything)
# survives the peripheral's ble.active(0)/active(1), a hard restart (unix:
# the process is killed; boards: machine.reset()) and a soft restart (unix:
# a clean exit; boards: machine.reset()), and that every reconnection is
# re-encrypted with the stored keys, without a new pairing: the stack then
# writes no secrets at all.

from micropython import const
import time, machine, bluetooth, os, sys

TIMEOUT_MS = 5000

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_SET_SECRET = const(30)

SERVICE_UUID = bluetooth.UUID("A5A5A5A5-FFFF-9999-1111-5A5A5A5A5A5A")
CHAR_UUID = bluetooth.UUID("00000000-1111-2222-3333-444444444444")
_FLAG_READ = const(0x0002)
_FLAG_READ_ENCRYPTED = const(0x0200)
CHAR = (CHAR_UUID, _FLAG_READ | _FLAG_READ_ENCRYPTED)
SERVICE = (SERVICE_UUID, (CHAR,))

waiting_events = {}
secret_writes = 0


def irq(event, data):
    global secret_writes
    if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
        waiting_events[event] = data[0]
    elif event == _IRQ_ENCRYPTION_UPDATE:
        waiting_events[event] = data[1:4]
    elif event == _IRQ_SET_SECRET:
        # Count what the stack stores, but leave the storing to the stack.
        secret_writes += 1
        return None
    if event not in waiting_events:
        waiting_events[event] = None


def wait_for_event(event, timeout_ms):
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
        if event in waiting_events:
            return waiting_events.pop(event)
        machine.idle()
    raise ValueError("Timeout waiting for {}".format(event))


def bond_file(instance):
    return "bond_test_restart_{}".format(instance)


def start(instance, fresh=False):
    try:
        ble.config(bond_file=bond_file(instance))
    except ValueError:
        # This build keeps no bonds of its own (no bond store).
        multitest.skip()
    if fresh:
        for suffix in ("", ".new"):
            try:
                os.remove(bond_file(instance) + suffix)
            except OSError:
                pass
    ble.config(bond=True, le_secure=False, mitm=False)
    ble.active(1)
    ble.irq(irq)


def restart(resume, soft):
    # Unix instances are restarted by the test runner: killed (hard) or
    # after they exit by themselves (soft).  Boards reset.
    multitest.expect_reboot(resume, 1000 if soft else 0)
    if soft:
        sys.exit()
    if hasattr(machine, "reset"):
        machine.reset()
    while True:
        time.sleep_ms(10)


def serve_one_connection(phase):
    global secret_writes
    ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
    multitest.broadcast("peripheral ready {}".format(phase))
    wait_for_event(_IRQ_CENTRAL_CONNECT, TIMEOUT_MS)
    secret_writes = 0
    print("phase", phase, "encryption", wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS))
    wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)
    print("phase", phase, "secrets written", secret_writes > 0)
    print("phase", phase, "same address", ble.config("mac") == BDADDR)


def require_bond_store():
    # Skip, before multitest.next(), on a stack that keeps no bonds of its
    # own (a build without a bond store), whichever instance runs it.
    try:
        ble.config("bond_file")
    except ValueError:
        multitest.skip()


# Peripheral: pairs once, then restarts in every way and expects re-encryption.
def instance0():
    require_bond_store()
    global BDADDR
    start(0, fresh=True)
    ble.gatts_register_services((SERVICE,))
    # After a restart the runner gives this instance BDADDR too.
    BDADDR = ble.config("mac")
    multitest.globals(BDADDR=BDADDR)
    multitest.next()
    serve_one_connection("pair")
    ble.active(0)
    start(0)
    serve_one_connection("active")
    restart("instance0_hard", soft=False)


def instance0_hard():
    start(0)
    serve_one_connection("hard")
    restart("instance0_soft", soft=True)


def instance0_soft():
    start(0)
    serve_one_connection("soft")
    ble.active(0)


# Central: stays up, pairs once and then only asks for encryption.
def instance1():
    require_bond_store()
    global secret_writes
    start(1, fresh=True)
    multitest.next()
    for phase in ("pair", "active", "hard", "soft"):
        multitest.wait("peripheral ready {}".format(phase))
        ble.gap_connect(*BDADDR)
        conn_handle = wait_for_event(_IRQ_PERIPHERAL_CONNECT, TIMEOUT_MS)
        secret_writes = 0
        ble.gap_pair(conn_handle)
        print("phase", phase, "encryption", wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS))
        print("phase", phase, "secrets written", secret_writes > 0)
        ble.gap_disconnect(conn_handle)
        wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, TIMEOUT_MS)
    ble.active(0)


ble = bluetooth.BLE()
