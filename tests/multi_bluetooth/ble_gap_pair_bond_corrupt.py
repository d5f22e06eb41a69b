# Test that the peripheral's bond store survives damage to its file.  With
# BLE inactive, the peripheral damages its own store file, then restarts
# (hard); BLE must come up, report what it recovered (one line on stderr,
# part of the expected output), keep every intact bond, and pairing a new
# central must still work.  spec/bond-store.md, section 4, defines the
# outcomes:
#
# - "garbage": bytes appended after the image are stale data: removed, every
#   record is kept, so central #0 re-encrypts without pairing.  Central #1
#   then pairs anew.
# - "damaged": a byte of the last record (a bond's) is changed, as a bad
#   flash cell or card would; a power cut cannot do this, it always leaves a
#   whole image.  The image fails its CRC, so its records are salvaged one
#   by one: every record that passes its own CRC is kept, so central #0
#   re-encrypts without pairing.  The damaged record holds the bond of
#   central #1 (the last one stored; on NimBLE, one of its two records, and
#   the other is then removed too): the peripheral has lost it, so it
#   refuses central #1's keys and the link is not encrypted (see
#   ble_gap_pair_bond_lru.py for an evicted bond).
#
# The central plays two devices (bond files), and is restarted to switch
# between them, so each identity really is a fresh device.

from micropython import const
import time, machine, bluetooth, os, struct

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
    if event == _IRQ_CENTRAL_CONNECT:
        # (conn_handle, addr_type, addr): copy the address out of the buffer.
        waiting_events[event] = (data[0], bytes(data[2]))
    elif event == _IRQ_PERIPHERAL_CONNECT:
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


def remove(path):
    for suffix in ("", ".new"):
        try:
            os.remove(path + suffix)
        except OSError:
            pass


def start(path, fresh=False):
    try:
        ble.config(bond_file=path)
    except ValueError:
        # This build keeps no bonds of its own (no bond store).
        multitest.skip()
    if fresh:
        remove(path)
    ble.config(bond=True, le_secure=False, mitm=False)
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


def is_bond(tag):
    # Whether a record holds a bond: BTstack's device DB entry ('BTD'+i), or
    # NimBLE's peer security record ('NPS'+i; with 'NOS'+i for our keys).
    return struct.pack(">I", tag)[:3] in (b"BTD", b"NPS", b"NOS")


def bonds_in(records):
    return len([tag for _, tag, _ in records if struct.pack(">I", tag)[:3] in (b"BTD", b"NPS")])


PERIPHERAL_FILE = "bond_test_corrupt_0"
GARBAGE = b"garbage!" * 5


def central_file(identity):
    return "bond_test_corrupt_1_{}".format(identity)


# (label, central identity, peripheral restarts before this step)
STEPS = (
    ("pair 0", 0, False),
    ("garbage 0", 0, True),
    ("garbage 1", 1, False),
    ("damaged 0", 0, True),
    ("damaged 1", 1, False),
)
# Steps whose central's bond the peripheral lost: encryption is refused.
LOST = ("damaged 1",)


def restart(resume):
    # Hard restart: unix instances are killed by the test runner, boards reset.
    multitest.expect_reboot(resume, 0)
    if hasattr(machine, "reset"):
        machine.reset()
    while True:
        time.sleep_ms(10)


def serve_one_connection(step):
    global secret_writes
    label = STEPS[step][0]
    # The central announces when it is up (again, after a restart).
    multitest.wait("central ready {}".format(label))
    ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
    multitest.broadcast("peripheral ready {}".format(label))
    conn_handle, addr = wait_for_event(_IRQ_CENTRAL_CONNECT, TIMEOUT_MS)
    secret_writes = 0
    if label in LOST:
        # A refused re-encryption encrypts nothing on this side.
        wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)
        print(label, "encryption", waiting_events.pop(_IRQ_ENCRYPTION_UPDATE, None))
    else:
        print(label, "encryption", wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS))
        wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)
    print(label, "secrets written", secret_writes > 0)


def resume(step):
    # A restarted peripheral: BLE must come up on the damaged file.
    start(PERIPHERAL_FILE)
    print(STEPS[step][0], "active", ble.active())
    multitest.broadcast("peripheral up {}".format(STEPS[step][0]))


def require_bond_store():
    # Skip, before multitest.next(), on a stack that keeps no bonds of its
    # own (a build without a bond store), whichever instance runs it.
    try:
        ble.config("bond_file")
    except ValueError:
        multitest.skip()


# Peripheral: one connection per step; damages its file before restarts.
def instance0():
    require_bond_store()
    start(PERIPHERAL_FILE, fresh=True)
    ble.gatts_register_services((SERVICE,))
    multitest.globals(BDADDR=ble.config("mac"))
    multitest.next()
    serve_one_connection(0)
    ble.active(0)
    with open(PERIPHERAL_FILE, "ab") as f:
        f.write(GARBAGE)
    restart("instance0_garbage")


def instance0_garbage():
    resume(1)
    serve_one_connection(1)
    serve_one_connection(2)
    ble.active(0)
    records = store_records(PERIPHERAL_FILE)
    print("bonds in the file", bonds_in(records))
    # Damage the last bond's record (as a bad flash cell or card would, not
    # a power cut: that always leaves a whole image).
    offset, tag, _ = records[-1]
    with open(PERIPHERAL_FILE, "r+b") as f:
        f.seek(offset + 5 + 20)
        byte = f.read(1)
        f.seek(offset + 5 + 20)
        f.write(bytes([byte[0] ^ 0x55]))
    print("damaged record holds a bond", is_bond(tag))
    restart("instance0_damaged")


def instance0_damaged():
    resume(3)
    serve_one_connection(3)
    serve_one_connection(4)
    ble.active(0)
    remove(PERIPHERAL_FILE)


# Central: each run of the central is one device (bond file); it runs the
# steps of its device in order and restarts to switch to the other device.
STATE_FILE = "bond_test_corrupt_1_state"


def instance1():
    require_bond_store()
    multitest.next()
    central_steps(0)


def instance1_step():
    with open(STATE_FILE) as f:
        central_steps(int(f.read()))


def central_steps(step):
    identity = STEPS[step][1]
    # A device's first step starts from a fresh bond file.
    start(central_file(identity), fresh=all(s[1] != identity for s in STEPS[:step]))
    while True:
        connect_and_encrypt(STEPS[step][0])
        step += 1
        if step == len(STEPS):
            break
        label, next_identity, peripheral_restarts = STEPS[step]
        if peripheral_restarts:
            # Talk to the peripheral only once it is up again.
            multitest.wait("peripheral up {}".format(label))
        if next_identity != identity:
            with open(STATE_FILE, "w") as f:
                f.write(str(step))
            restart("instance1_step")
    ble.active(0)
    for path in (STATE_FILE, central_file(0), central_file(1)):
        remove(path)


def connect_and_encrypt(label):
    global secret_writes
    multitest.broadcast("central ready {}".format(label))
    multitest.wait("peripheral ready {}".format(label))
    ble.gap_connect(*BDADDR)
    conn_handle = wait_for_event(_IRQ_PERIPHERAL_CONNECT, TIMEOUT_MS)
    secret_writes = 0
    ble.gap_pair(conn_handle)
    encryption = wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS)
    if label == "damaged 1":
        # Refused keys: the link stays unencrypted.  BTstack still reports
        # the central bonded (its keys are kept), NimBLE not: (0, 0, 1) and
        # (0, 0, 0).
        encryption = encryption[0]
    print(label, "encryption", encryption)
    print(label, "secrets written", secret_writes > 0)
    ble.gap_disconnect(conn_handle)
    wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, TIMEOUT_MS)


ble = bluetooth.BLE()
