# Test the status a central gets when it reads an encrypted characteristic
# before pairing, and that the read succeeds once the link is paired.
#
# Two stacks decide the status in _IRQ_GATTC_READ_DONE (measured over the
# virtual radio, peripheral/central):
# - the peripheral's ATT error: BTstack answers Insufficient Encryption
#   (0x0F), NimBLE Insufficient Authentication (0x05);
# - the central's encoding: BTstack passes the ATT error code on, NimBLE adds
#   its BLE_HS_ERR_ATT_BASE (0x100).
# So btstack/btstack 15, nimble/nimble 261, btstack/nimble 271,
# nimble/btstack 5.  The test accepts all four and names the one it saw.

from micropython import const
import time, machine, bluetooth

if not hasattr(bluetooth.BLE, "gap_pair"):
    print("SKIP")
    raise SystemExit

TIMEOUT_MS = 4000

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GATTC_CHARACTERISTIC_RESULT = const(11)
_IRQ_GATTC_CHARACTERISTIC_DONE = const(12)
_IRQ_GATTC_READ_RESULT = const(15)
_IRQ_GATTC_READ_DONE = const(16)
_IRQ_ENCRYPTION_UPDATE = const(28)

_FLAG_READ = const(0x0002)
_FLAG_READ_ENCRYPTED = const(0x0200)

_ATT_ERROR_INSUFFICIENT_AUTHENTICATION = const(0x05)
_ATT_ERROR_INSUFFICIENT_ENCRYPTION = const(0x0F)
_BLE_HS_ERR_ATT_BASE = const(0x100)  # NimBLE
NEEDS_SECURITY = (
    _ATT_ERROR_INSUFFICIENT_AUTHENTICATION,
    _ATT_ERROR_INSUFFICIENT_ENCRYPTION,
    _BLE_HS_ERR_ATT_BASE + _ATT_ERROR_INSUFFICIENT_AUTHENTICATION,
    _BLE_HS_ERR_ATT_BASE + _ATT_ERROR_INSUFFICIENT_ENCRYPTION,
)

SERVICE_UUID = bluetooth.UUID("A5A5A5A5-FFFF-9999-1111-5A5A5A5A5A5B")
CHAR_UUID = bluetooth.UUID("00000000-1111-2222-3333-444444444445")
SERVICE = (SERVICE_UUID, ((CHAR_UUID, _FLAG_READ | _FLAG_READ_ENCRYPTED),))

waiting_events = {}


def irq(event, data):
    if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
        waiting_events[event] = data[0]
    elif event == _IRQ_GATTC_CHARACTERISTIC_RESULT:
        if data[-1] == CHAR_UUID:
            waiting_events[event] = data[2]
        return
    elif event == _IRQ_GATTC_READ_RESULT:
        print("read result", bytes(data[-1]))
    elif event == _IRQ_GATTC_READ_DONE:
        waiting_events[event] = data[-1]
        return
    elif event == _IRQ_ENCRYPTION_UPDATE:
        print("encryption update", data[1], data[3])
    if event not in waiting_events:
        waiting_events[event] = None


def wait_for_event(event, timeout_ms):
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
        if event in waiting_events:
            return waiting_events.pop(event)
        machine.idle()
    raise ValueError("Timeout waiting for {}".format(event))


def status_name(status):
    return "ok" if status == 0 else "status {}".format(status)


# Acting in peripheral role.
def instance0():
    multitest.globals(BDADDR=ble.config("mac"))
    ((char_handle,),) = ble.gatts_register_services((SERVICE,))
    ble.gatts_write(char_handle, "secret")
    ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
    multitest.next()
    try:
        wait_for_event(_IRQ_CENTRAL_CONNECT, TIMEOUT_MS)
        wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS)
        wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)
    finally:
        ble.active(0)


# Acting in central role.
def instance1():
    multitest.next()
    try:
        ble.gap_connect(*BDADDR)
        conn_handle = wait_for_event(_IRQ_PERIPHERAL_CONNECT, TIMEOUT_MS)
        ble.gattc_discover_characteristics(conn_handle, 1, 65535)
        value_handle = wait_for_event(_IRQ_GATTC_CHARACTERISTIC_RESULT, TIMEOUT_MS)
        wait_for_event(_IRQ_GATTC_CHARACTERISTIC_DONE, TIMEOUT_MS)

        ble.gattc_read(conn_handle, value_handle)
        status = wait_for_event(_IRQ_GATTC_READ_DONE, TIMEOUT_MS)
        print("read before pairing: needs security", status in NEEDS_SECURITY)
        if status not in NEEDS_SECURITY:
            print(status_name(status))

        ble.gap_pair(conn_handle)
        wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS)
        ble.gattc_read(conn_handle, value_handle)
        print("read after pairing:", status_name(wait_for_event(_IRQ_GATTC_READ_DONE, TIMEOUT_MS)))

        ble.gap_disconnect(conn_handle)
        wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, TIMEOUT_MS)
    finally:
        ble.active(0)


ble = bluetooth.BLE()
ble.config(mitm=False, le_secure=True, bond=False)
ble.active(1)
ble.irq(irq)
