# Test bond management: gap_bonds() lists a bond, gap_unpair(addr_type, addr)
# forgets it (closing the connection), after which the peer can no longer
# re-encrypt; the peer forgets its side with gap_unpair() and pairs again;
# finally gap_unpair() forgets everything and no peer key is left in the store.
#
# Secrets go through an aioble-style _IRQ_GET/SET_SECRET handler (NimBLE's
# only store; on BTstack it sees a mirror of the bond file).

from micropython import const
import time, machine, bluetooth

if not hasattr(bluetooth.BLE, "gap_unpair"):
    print("SKIP")
    raise SystemExit

TIMEOUT_MS = 5000

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)

# BTstack's TLV entries in the secret handler; a device DB entry ('BTD'+n) is
# BTstack's le_device_db_entry_t: the peer's IRK at 14..29, the LTK at 30..45.
_SECRET_TYPE_BTSTACK_TLV = const(0x20)

secrets = {}
device_db_values = []
waiting_events = {}


def get_secret(sec_type, index, key):
    if key is None:
        # NimBLE lists its bonds by index.
        values = [v for (t, _), v in secrets.items() if t == sec_type]
        return values[index] if index < len(values) else None
    return secrets.get((sec_type, bytes(key)))


def set_secret(sec_type, key, value):
    key = (sec_type, bytes(key))
    if value is None:
        secrets.pop(key, None)
    else:
        secrets[key] = bytes(value)
        if sec_type == _SECRET_TYPE_BTSTACK_TLV and key[1][:3] == b"BTD":
            device_db_values.append(bytes(value))
    return True


def irq(event, data):
    if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
        print("connect")
        waiting_events[event] = (data[0], data[1], bytes(data[2]))
    elif event == _IRQ_CENTRAL_DISCONNECT or event == _IRQ_PERIPHERAL_DISCONNECT:
        print("disconnect")
    elif event == _IRQ_ENCRYPTION_UPDATE:
        # encrypted, bonded.  When encrypting with a forgotten bond fails,
        # BTstack reports bonded=1 (it still holds its side of the bond) and
        # NimBLE bonded=0, so bonded is shown for an encrypted link only.
        print("_IRQ_ENCRYPTION_UPDATE", data[1], data[3] if data[1] else 0)
    elif event == _IRQ_GET_SECRET:
        return get_secret(*data)
    elif event == _IRQ_SET_SECRET:
        return set_secret(*data)
    if event not in waiting_events:
        waiting_events[event] = None


def wait_for_event(event, timeout_ms):
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
        if event in waiting_events:
            return waiting_events.pop(event)
        machine.idle()
    raise ValueError("Timeout waiting for {}".format(event))


def print_bonds(peer_addr_type, peer_addr):
    bonds = ble.gap_bonds()
    print("bonds", len(bonds))
    for addr_type, addr, authenticated, secure in bonds:
        print("bond", addr_type == peer_addr_type, addr == peer_addr, authenticated, secure)


def peer_keys_left():
    # The bond file (BTstack) and the secret handler must both be free of
    # the keys of every bond that was made.
    try:
        with open(ble.config("bond_file"), "rb") as f:
            stored = f.read()
        if not device_db_values:
            return True  # BTstack: the bonds' keys were never seen, can't tell.
    except (ValueError, TypeError, OSError):
        stored = b""  # NimBLE: the handler is the only store.
    stored += b"".join(secrets.values())
    for value in device_db_values:
        if value[14:30] in stored or value[30:46] in stored:
            return True
    return any(t != _SECRET_TYPE_BTSTACK_TLV for t, _ in secrets)


def unpair_unknown(addr_type, addr):
    try:
        ble.gap_unpair(addr_type, addr)
    except OSError as e:
        print("gap_unpair unknown", e.errno)


# Acting in peripheral role.
def instance0():
    multitest.globals(BDADDR=ble.config("mac"))
    multitest.next()
    try:
        ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
        multitest.broadcast("advertising")
        conn_handle, addr_type, addr = wait_for_event(_IRQ_CENTRAL_CONNECT, TIMEOUT_MS)
        wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS)
        print_bonds(addr_type, addr)

        # Forget the central while it is connected (once it has listed its
        # bond, or the link could close before it prints): the link closes.
        multitest.wait("listed")
        ble.gap_unpair(addr_type, addr)
        wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)
        print_bonds(addr_type, addr)
        unpair_unknown(addr_type, addr)

        # The central tries its old keys, then forgets them and pairs again.
        for _ in range(2):
            ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
            multitest.broadcast("advertising")
            wait_for_event(_IRQ_CENTRAL_CONNECT, TIMEOUT_MS)
            wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)
        print_bonds(addr_type, addr)

        ble.gap_unpair()
        print_bonds(addr_type, addr)
        print("peer keys left", peer_keys_left())
    finally:
        ble.active(0)


# Acting in central role.
def instance1():
    multitest.next()
    try:
        for phase in ("pair", "old keys", "pair again"):
            multitest.wait("advertising")
            waiting_events.clear()
            ble.gap_connect(BDADDR[0], BDADDR[1], 5000)
            conn_handle, _, _ = wait_for_event(_IRQ_PERIPHERAL_CONNECT, TIMEOUT_MS)
            ble.gap_pair(conn_handle)
            wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS)
            if phase == "old keys":
                # The peripheral had no key for this bond any more, so the
                # encryption failed: forget the bond (closes the link).
                ble.gap_unpair(BDADDR[0], BDADDR[1])
            else:
                print("bonds", len(ble.gap_bonds()))
            if phase == "pair":
                multitest.broadcast("listed")
            if phase == "pair again":
                ble.gap_disconnect(conn_handle)
            # After "pair", the peripheral forgets the bond and closes the link.
            wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, TIMEOUT_MS)
        ble.gap_unpair()
        print("bonds", len(ble.gap_bonds()))
        print("peer keys left", peer_keys_left())
    finally:
        ble.active(0)


ble = bluetooth.BLE()
ble.config(bond=True, le_secure=True)
ble.active(1)
ble.irq(irq)
