# Test that a bond made with LE legacy pairing survives a hard restart of
# the peripheral.  On BTstack the peripheral does not keep the LTK it handed
# out in legacy pairing: it re-derives it from its ER root key and the
# EDIV/Rand the central presents.  So re-encryption without a new pairing
# after a restart proves that ER was kept (a new ER gives a different LTK
# and the encryption fails).
#
# Phase "legacy": ble.config(le_secure=False) on both sides.
# Phase "secure": ble.config(le_secure=True) on both sides, with a new
# central identity (a fresh bond file, hence a fresh address and no bond),
# and again a hard restart of the peripheral.
# The peripheral prints (key size, secure_connection) of every bond in its
# store: the "secure" bond must have been made with LE Secure Connections
# (1) and the "legacy" one without (0), and both must survive the restart.

from micropython import const
import time, machine, bluetooth, os, struct, sys

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
        # (encrypted, authenticated, bonded, key_size)
        waiting_events[event] = data[1:5]
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


def remove(path):
    for suffix in ("", ".new"):
        try:
            os.remove(path + suffix)
        except OSError:
            pass


def start(path, le_secure, fresh=False):
    try:
        ble.config(bond_file=path)
    except ValueError:
        # This build keeps no bonds of its own (no bond store).
        multitest.skip()
    if fresh:
        remove(path)
    ble.config(bond=True, le_secure=le_secure, mitm=False)
    ble.active(1)
    ble.irq(irq)


def store_records(path):
    # The bond file (spec/bond-store.md, version 2): the records of its newest
    # image, as (offset, tag, value).  Images start at multiples of 512 with
    # b"MPBS", version 2, 0, records' length (2), generation (4) and CRC (4);
    # a record is tag (4), length (1), value, CRC (4).
    with open(path, "rb") as f:
        data = f.read()
    images = []
    for p in range(0, len(data), 512):
        if data[p : p + 4] == b"MPBS":
            images.append((struct.unpack_from("<I", data, p + 8)[0], p))
    p = max(images)[1]
    end = p + 16 + struct.unpack_from("<H", data, p + 6)[0]
    records = []
    p += 16
    while p < end:
        tag, n = struct.unpack_from("<IB", data, p)
        records.append((p, tag, data[p + 5 : p + 5 + n]))
        p += 9 + n
    return records


def stored_bonds(path):
    # Every bond in the file as (key_size, secure_connection), sorted:
    # BTstack's le_device_db entries ('BTD'+i: key size at 56, SC flag at 59),
    # NimBLE's peer security records ('NPS'+i: key size at 7, flags at 18,
    # SC is bit 4).
    bonds = []
    for _, tag, v in store_records(path):
        if tag >> 8 == 0x425444:
            bonds.append((v[56], v[59]))
        elif tag >> 8 == 0x4E5053:
            bonds.append((v[7], (v[18] >> 4) & 1))
    return sorted(bonds)


def restart(resume):
    # Hard restart: unix instances are killed by the test runner, boards reset.
    multitest.expect_reboot(resume, 0)
    if hasattr(machine, "reset"):
        machine.reset()
    while True:
        time.sleep_ms(10)


PERIPHERAL_FILE = "bond_test_legacy_0"
PERIPHERAL_STATE = "bond_test_legacy_0_state"
CENTRAL_FILES = ("bond_test_legacy_1a", "bond_test_legacy_1b")

# (label, le_secure, central identity).  The peripheral restarts (hard)
# before every step but the first; the central restarts to switch identity.
# Both restart rather than cycle ble.active(): on the unix port a re-
# activation of BTstack now and then stalls (its H4 UART is left open).
STEPS = (
    ("legacy pair", False, 0),
    ("legacy restart", False, 0),
    ("secure pair", True, 1),
    ("secure restart", True, 1),
)


def serve_one_connection(label):
    global secret_writes
    # The central announces when it is up (again, after a restart).
    multitest.wait("central ready {}".format(label))
    ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
    multitest.broadcast("peripheral ready {}".format(label))
    wait_for_event(_IRQ_CENTRAL_CONNECT, TIMEOUT_MS)
    secret_writes = 0
    print(label, "encryption", wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS))
    wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)
    print(label, "secrets written", secret_writes > 0)
    # (key_size, secure_connection) of each bond the peripheral keeps.
    print(label, "stored bonds", stored_bonds(PERIPHERAL_FILE))


def require_bond_store():
    # Skip, before multitest.next(), on a stack that keeps no bonds of its
    # own (a build without a bond store), whichever instance runs it.
    try:
        ble.config("bond_file")
    except ValueError:
        multitest.skip()


# Peripheral: one step per run, then a hard restart.
def instance0():
    require_bond_store()
    start(PERIPHERAL_FILE, le_secure=False, fresh=True)
    ble.gatts_register_services((SERVICE,))
    multitest.globals(BDADDR=ble.config("mac"))
    multitest.next()
    peripheral_step(0)


def instance0_step():
    with open(PERIPHERAL_STATE) as f:
        step = int(f.read())
    label, le_secure, _ = STEPS[step]
    start(PERIPHERAL_FILE, le_secure=le_secure)
    # The central waits for this before it talks to the peripheral again.
    multitest.broadcast("peripheral up {}".format(label))
    peripheral_step(step)


def peripheral_step(step):
    serve_one_connection(STEPS[step][0])
    if step + 1 < len(STEPS):
        with open(PERIPHERAL_STATE, "w") as f:
            f.write(str(step + 1))
        restart("instance0_step")
    ble.active(0)
    remove(PERIPHERAL_FILE)
    remove(PERIPHERAL_STATE)


# Central: one identity (bond file) per le_secure setting; restarts only to
# switch identity.
def instance1():
    require_bond_store()
    multitest.next()
    central_steps(0)


def instance1_secure():
    central_steps(2)


def central_steps(step):
    _, le_secure, identity = STEPS[step]
    start(CENTRAL_FILES[identity], le_secure=le_secure, fresh=True)
    while True:
        connect_and_encrypt(STEPS[step][0])
        step += 1
        if step == len(STEPS):
            break
        # The peripheral restarts before every step: wait until it is up.
        multitest.wait("peripheral up {}".format(STEPS[step][0]))
        if STEPS[step][2] != identity:
            restart("instance1_secure")
    ble.active(0)
    for path in CENTRAL_FILES:
        remove(path)


def connect_and_encrypt(label):
    global secret_writes
    multitest.broadcast("central ready {}".format(label))
    multitest.wait("peripheral ready {}".format(label))
    ble.gap_connect(*BDADDR)
    conn_handle = wait_for_event(_IRQ_PERIPHERAL_CONNECT, TIMEOUT_MS)
    secret_writes = 0
    ble.gap_pair(conn_handle)
    print(label, "encryption", wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS))
    print(label, "secrets written", secret_writes > 0)
    ble.gap_disconnect(conn_handle)
    wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, TIMEOUT_MS)


ble = bluetooth.BLE()
