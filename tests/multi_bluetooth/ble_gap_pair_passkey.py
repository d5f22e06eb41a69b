# Test MITM pairing: passkey entry (display on the peripheral, keyboard on the
# central; LE Secure Connections with the right and then a wrong passkey, then
# legacy pairing) and numeric comparison (Secure Connections, both confirm).  The authenticated flag of
# _IRQ_ENCRYPTION_UPDATE shows that MITM protection was achieved.

from micropython import const
import time, machine, bluetooth

if not hasattr(bluetooth.BLE, "gap_passkey"):
    print("SKIP")
    raise SystemExit

TIMEOUT_MS = 5000
# Passkey entry with Secure Connections takes 20 rounds of four SMP PDUs
# (confirm and random values each way), each waiting for a connection event:
# 1-2 s at NimBLE's 30-50 ms interval, and more on a busy host.
PAIRING_TIMEOUT_MS = 20_000

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_PASSKEY_ACTION = const(31)

_IO_CAPABILITY_DISPLAY_ONLY = const(0)
_IO_CAPABILITY_DISPLAY_YESNO = const(1)
_IO_CAPABILITY_KEYBOARD_ONLY = const(2)

_PASSKEY_ACTION_INPUT = const(2)
_PASSKEY_ACTION_DISPLAY = const(3)
_PASSKEY_ACTION_NUMERIC_COMPARISON = const(4)

PASSKEY = 123456
WRONG_PASSKEY = 654321

waiting_events = {}
passkey_to_enter = PASSKEY


def irq(event, data):
    if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
        print("connect")
        waiting_events[event] = data[0]
    elif event == _IRQ_CENTRAL_DISCONNECT or event == _IRQ_PERIPHERAL_DISCONNECT:
        print("disconnect")
    elif event == _IRQ_ENCRYPTION_UPDATE:
        # encrypted, authenticated (bonded is not the subject here)
        print("_IRQ_ENCRYPTION_UPDATE", data[1], data[2])
    elif event == _IRQ_PASSKEY_ACTION:
        conn_handle, action, passkey = data
        if action == _PASSKEY_ACTION_DISPLAY:
            print("passkey display")
            ble.gap_passkey(conn_handle, action, PASSKEY)
        elif action == _PASSKEY_ACTION_INPUT:
            print("passkey input")
            ble.gap_passkey(conn_handle, action, passkey_to_enter)
        elif action == _PASSKEY_ACTION_NUMERIC_COMPARISON:
            print("numeric comparison", 0 <= passkey <= 999999)
            ble.gap_passkey(conn_handle, action, 1)
    if event not in waiting_events:
        waiting_events[event] = None


def wait_for_event(event, timeout_ms):
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
        if event in waiting_events:
            return waiting_events.pop(event)
        machine.idle()
    raise ValueError("Timeout waiting for {}".format(event))


# (peripheral io, central io, le_secure, passkey the central enters)
PHASES = (
    (_IO_CAPABILITY_DISPLAY_ONLY, _IO_CAPABILITY_KEYBOARD_ONLY, True, PASSKEY),
    (_IO_CAPABILITY_DISPLAY_ONLY, _IO_CAPABILITY_KEYBOARD_ONLY, True, WRONG_PASSKEY),
    (_IO_CAPABILITY_DISPLAY_ONLY, _IO_CAPABILITY_KEYBOARD_ONLY, False, PASSKEY),
    (_IO_CAPABILITY_DISPLAY_YESNO, _IO_CAPABILITY_DISPLAY_YESNO, True, None),
)


def configure(io, le_secure):
    ble.config(mitm=True, le_secure=le_secure, bond=False, io=io)


# Acting in peripheral role.
def instance0():
    multitest.globals(BDADDR=ble.config("mac"))
    multitest.next()
    try:
        for io, _, le_secure, _ in PHASES:
            configure(io, le_secure)
            ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
            multitest.broadcast("advertising")
            wait_for_event(_IRQ_CENTRAL_CONNECT, TIMEOUT_MS)
            wait_for_event(_IRQ_ENCRYPTION_UPDATE, PAIRING_TIMEOUT_MS)
            wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)
    finally:
        ble.active(0)


# Acting in central role.
def instance1():
    global passkey_to_enter
    multitest.next()
    try:
        for _, io, le_secure, passkey in PHASES:
            configure(io, le_secure)
            passkey_to_enter = passkey
            multitest.wait("advertising")
            ble.gap_connect(BDADDR[0], BDADDR[1], 5000)
            conn_handle = wait_for_event(_IRQ_PERIPHERAL_CONNECT, TIMEOUT_MS)
            ble.gap_pair(conn_handle)
            wait_for_event(_IRQ_ENCRYPTION_UPDATE, PAIRING_TIMEOUT_MS)
            ble.gap_disconnect(conn_handle)
            wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, TIMEOUT_MS)
    finally:
        ble.active(0)


ble = bluetooth.BLE()
ble.config(mitm=True, le_secure=True, bond=False)
ble.active(1)
ble.irq(irq)
