# Test that bonds kept only by the application's secret handler survive a
# hard restart of the peripheral (unix: the process is killed; boards:
# machine.reset()).  The handler follows aioble's security.py: secrets live
# in a dict, saved to a JSON file on every _IRQ_SET_SECRET (returning True),
# and _IRQ_GET_SECRET is answered by key, or by index among the secrets of
# the asked type when the key is None.  ble.config(bond_file=None) turns the
# stack's own file off, so the handler is the only persistence.  It gets
# everything the stack must keep: on BTstack its TLV entries (type 0x20), on
# NimBLE its security records, CCCDs, IRK and random static address (types
# 1, 2, 3, 10 and 11).
#
# With bond_file=None the store is RAM-only by request, so it prints no
# warnings about the file writes it does not make.
#
# After the restart, the peripheral reloads the JSON file before
# ble.active(1), so the stack gets its keys and its address back from the
# handler, and the central's reconnection is re-encrypted without a new
# pairing: no secret is written.

from micropython import const
import time, machine, bluetooth, os, json, binascii

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

# The application's secret store: (sec_type, key) -> value, and its file.
secrets = {}
secrets_file = None


def load_secrets(path, fresh=False):
    global secrets_file
    secrets_file = path
    secrets.clear()
    if fresh:
        try:
            os.remove(path)
        except OSError:
            pass
        return
    with open(path) as f:
        for sec_type, key, value in json.load(f):
            secrets[sec_type, binascii.unhexlify(key)] = binascii.unhexlify(value)


def save_secrets():
    with open(secrets_file, "w") as f:
        json.dump(
            [
                [sec_type, binascii.hexlify(key).decode(), binascii.hexlify(value).decode()]
                for (sec_type, key), value in secrets.items()
            ],
            f,
        )


def irq(event, data):
    global secret_writes
    if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
        waiting_events[event] = data[0]
    elif event == _IRQ_ENCRYPTION_UPDATE:
        waiting_events[event] = data[1:4]
    elif event == _IRQ_SET_SECRET:
        secret_writes += 1
        sec_type, key, value = data
        key = (sec_type, bytes(key))
        if value is None:
            if key not in secrets:
                return False
            del secrets[key]
        else:
            secrets[key] = bytes(value)
        save_secrets()
        return True
    elif event == _IRQ_GET_SECRET:
        sec_type, index, key = data
        if key is None:
            # The index-th secret of this type.
            i = 0
            for (t, _), value in secrets.items():
                if t == sec_type:
                    if i == index:
                        return value
                    i += 1
            return None
        return secrets.get((sec_type, bytes(key)), None)
    if event not in waiting_events:
        waiting_events[event] = None


def wait_for_event(event, timeout_ms):
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
        if event in waiting_events:
            return waiting_events.pop(event)
        machine.idle()
    raise ValueError("Timeout waiting for {}".format(event))


def start(instance, fresh=False):
    load_secrets("bond_test_handler_{}.json".format(instance), fresh)
    try:
        # BTstack: no bond file, the handler is the only persistence.
        ble.config(bond_file=None)
    except ValueError:
        # This build keeps no bonds of its own (no bond store).
        multitest.skip()
    ble.config(bond=True, le_secure=False, mitm=False)
    # Before active(1): the stack asks the handler for its secrets then.
    ble.irq(irq)
    ble.active(1)


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


# Peripheral: pairs, restarts hard and expects re-encryption.
def instance0():
    global BDADDR
    start(0, fresh=True)
    ble.gatts_register_services((SERVICE,))
    # After the restart the runner gives this instance BDADDR too.
    BDADDR = ble.config("mac")
    multitest.globals(BDADDR=BDADDR)
    multitest.next()
    serve_one_connection("pair")
    print("secrets saved", len(secrets) > 0)
    multitest.expect_reboot("instance0_hard", 0)
    if hasattr(machine, "reset"):
        machine.reset()
    while True:
        time.sleep_ms(10)


def instance0_hard():
    start(0)
    print("secrets loaded", len(secrets) > 0)
    ble.gatts_register_services((SERVICE,))
    serve_one_connection("hard")
    ble.active(0)
    os.remove(secrets_file)


# Central: stays up (its handler keeps its bond), pairs, then re-encrypts.
def instance1():
    global secret_writes
    start(1, fresh=True)
    multitest.next()
    for phase in ("pair", "hard"):
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
    os.remove(secrets_file)


ble = bluetooth.BLE()
