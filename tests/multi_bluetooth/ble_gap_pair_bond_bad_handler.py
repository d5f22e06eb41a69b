# Test that a misbehaving _IRQ_GET_SECRET handler cannot stop BLE from coming
# up, nor cost a bond kept in the stack's own file.  The peripheral pairs,
# then restarts (hard) with a handler that, for the secrets the stack asks
# for at ble.active(1):
#
# - "raise": raises.  As for any IRQ handler, MicroPython prints
#   "Unhandled exception in IRQ callback handler" and the traceback, and
#   disables the handler; the test registers it again after active(1).
#   (The traceback's line number counts the 3 lines that run-multitests.py
#   puts before a unix instance's script.)
# - "int": returns an int, not bytes, for the stack's ER key (on which a
#   legacy bond depends): the stack prints that the handler must return
#   bytes or None, and takes the secret as not given, so ER comes from the
#   file.
#
# Each time BLE must be active and the central's reconnection re-encrypted
# with the bond from the file, without a new pairing.

from micropython import const
import time, machine, bluetooth, os, sys

TIMEOUT_MS = 5000

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
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
    return "bond_test_bad_handler_{}".format(instance)


def raising_irq(event, data):
    if event == _IRQ_GET_SECRET:
        raise ValueError("no secrets here")
    return irq(event, data)


int_returned = False


def int_irq(event, data):
    # A wrong type, once: for BTstack's ER key (the one a legacy bond depends
    # on), for NimBLE's first question (the list of its security records,
    # asked with no key).
    global int_returned
    if event == _IRQ_GET_SECRET:
        if not int_returned and (data[2] is None or bytes(data[2]) == b"SMER"):
            int_returned = True
            return 42
        return None
    return irq(event, data)


def start(instance, handler=irq, fresh=False):
    ble.config(bond_file=bond_file(instance))
    if fresh:
        for suffix in ("", ".new"):
            try:
                os.remove(bond_file(instance) + suffix)
            except OSError:
                pass
    ble.config(bond=True, le_secure=False, mitm=False)
    # Before active(1), so that the stack asks the handler for its secrets.
    ble.irq(handler)
    ble.active(1)
    print("active", ble.active())
    # The raising handler has been disabled by now: set the normal one.
    ble.irq(irq)


def restart(resume):
    # Hard restart: unix instances are killed by the test runner, boards reset.
    multitest.expect_reboot(resume, 0)
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


# Peripheral: pairs, then restarts with a bad handler each time.
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
    restart("instance0_raise")


def instance0_raise():
    start(0, raising_irq)
    serve_one_connection("raise")
    restart("instance0_int")


def instance0_int():
    start(0, int_irq)
    serve_one_connection("int")
    ble.active(0)
    os.remove(bond_file(0))


# Central: stays up, pairs once and then only asks for encryption.
def instance1():
    require_bond_store()
    global secret_writes
    start(1, fresh=True)
    multitest.next()
    for phase in ("pair", "raise", "int"):
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
    os.remove(bond_file(1))


ble = bluetooth.BLE()
