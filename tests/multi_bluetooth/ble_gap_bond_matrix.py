# Test one cell of the bonding matrix: pair and bond (legacy or LE Secure
# Connections), optionally restart one side (hard restart: on unix the
# process is killed; boards reset), reconnect and re-encrypt with the stored
# keys, without a new pairing.  Both stacks keep their secrets through an
# aioble-style _IRQ_GET/SET_SECRET handler backed by a file, which is
# NimBLE's only store; on BTstack the handler sees the bond file's mirror.
#
# `python -m mpoverlay matrix` runs every cell: it writes copies of this test
# with other values of the two parameters below.
LE_SECURE = True
RESTART = "none"  # "none", "peripheral" or "central"

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

if not hasattr(bluetooth.BLE, "gap_bonds"):
    print("SKIP")
    raise SystemExit

waiting_events = {}
secrets = {}
secret_writes = 0


def secrets_file(instance):
    return "{}/bond_matrix_secrets_{}.json".format(os.getenv("HOME") or "", instance)


def load_secrets(instance):
    try:
        with open(secrets_file(instance)) as f:
            for k, v in json.load(f).items():
                sec_type, key = k.split(":")
                secrets[(int(sec_type), binascii.unhexlify(key))] = binascii.unhexlify(v)
    except OSError:
        pass


def save_secrets():
    data = {}
    for (sec_type, key), value in secrets.items():
        data["{}:{}".format(sec_type, binascii.hexlify(key).decode())] = binascii.hexlify(
            value
        ).decode()
    with open(secrets_file(INSTANCE), "w") as f:
        json.dump(data, f)


def irq(event, data):
    global secret_writes
    if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
        waiting_events[event] = data[0]
    elif event == _IRQ_ENCRYPTION_UPDATE:
        # encrypted, bonded
        waiting_events[event] = (data[1], data[3])
    elif event == _IRQ_GET_SECRET:
        sec_type, index, key = data
        if key is None:
            values = [v for (t, _), v in secrets.items() if t == sec_type]
            return values[index] if index < len(values) else None
        return secrets.get((sec_type, bytes(key)))
    elif event == _IRQ_SET_SECRET:
        sec_type, key, value = data
        secret_writes += 1
        if value is None:
            secrets.pop((sec_type, bytes(key)), None)
        else:
            secrets[(sec_type, bytes(key))] = bytes(value)
        save_secrets()
        return True
    if event not in waiting_events:
        waiting_events[event] = None


def wait_for_event(event, timeout_ms):
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
        if event in waiting_events:
            return waiting_events.pop(event)
        machine.idle()
    raise ValueError("Timeout waiting for {}".format(event))


def start(instance, fresh):
    global INSTANCE
    INSTANCE = instance
    if fresh:
        for name in (
            secrets_file(instance),
            "{}/.micropython/btstack_bonds".format(os.getenv("HOME")),
        ):
            try:
                os.remove(name)
            except OSError:
                pass
    else:
        load_secrets(instance)
    ble.config(bond=True, le_secure=LE_SECURE, mitm=False)
    ble.irq(irq)
    ble.active(1)


def report(phase, role):
    encrypted, bonded = wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS)
    print(phase, role, "encrypted", encrypted, "bonded", bonded)


def report_bond(role):
    bonds = ble.gap_bonds()
    print(role, "bonds", len(bonds), "secure as configured", [b[3] for b in bonds] == [LE_SECURE])


def restart(resume):
    # Unix instances are killed and started again by the test runner.
    multitest.expect_reboot(resume, 0)
    if hasattr(machine, "reset"):
        machine.reset()
    while True:
        time.sleep_ms(10)


# Peripheral.
def instance0():
    start(0, fresh=True)
    multitest.globals(BDADDR=ble.config("mac"))
    multitest.next()
    ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
    multitest.broadcast("advertising pair")
    wait_for_event(_IRQ_CENTRAL_CONNECT, TIMEOUT_MS)
    report("pair", "peripheral")
    wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)
    report_bond("peripheral")
    if RESTART == "peripheral":
        restart("instance0_restarted")
    else:
        instance0_reconnect()


def instance0_restarted():
    start(0, fresh=False)
    instance0_reconnect()


def instance0_reconnect():
    global secret_writes
    if RESTART == "central":
        multitest.wait("central restarted")
    ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
    multitest.broadcast("advertising reconnect")
    wait_for_event(_IRQ_CENTRAL_CONNECT, TIMEOUT_MS)
    secret_writes = 0
    report("reconnect", "peripheral")
    wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)
    print("reconnect peripheral paired again", secret_writes > 0)
    ble.active(0)


# Central.
def instance1():
    start(1, fresh=True)
    multitest.next()
    connect_and_encrypt("pair")
    report_bond("central")
    if RESTART == "central":
        restart("instance1_restarted")
    else:
        connect_and_encrypt("reconnect")
        ble.active(0)


def instance1_restarted():
    start(1, fresh=False)
    multitest.broadcast("central restarted")
    connect_and_encrypt("reconnect")
    ble.active(0)


def connect_and_encrypt(phase):
    global secret_writes
    multitest.wait("advertising " + phase)
    ble.gap_connect(*BDADDR)
    conn_handle = wait_for_event(_IRQ_PERIPHERAL_CONNECT, TIMEOUT_MS)
    secret_writes = 0
    ble.gap_pair(conn_handle)
    report(phase, "central")
    ble.gap_disconnect(conn_handle)
    wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, TIMEOUT_MS)
    if phase == "reconnect":
        print("reconnect central paired again", secret_writes > 0)


ble = bluetooth.BLE()
