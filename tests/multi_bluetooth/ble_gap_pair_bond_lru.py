# Test how many bonds the peripheral keeps and which one it drops when full.
#
# BTstack's le_device_db_tlv keeps NVM_NUM_DEVICE_DB_ENTRIES (16) bonds; a
# 17th pairing replaces the bond with the lowest seq_nr, i.e. the least
# recently stored one (re-encryption does not refresh it).  The central
# plays 17 different devices: each has a bond file of its own, so it comes
# up with that file's random static address and bonds.  It is restarted
# between devices (hard), so each identity really is a fresh device.
# Identity #0 re-encrypts just before the 17th pairing: re-encryption does
# not refresh a bond, so identity #0's is still the one replaced.  After the
# 17 pairings, the peripheral's store must hold 16 bonds, without identity
# #0's; identity #1 must still re-encrypt without a new pairing,
# and identity #0 (which still has its bond) must find itself forgotten:
# the peripheral refuses its keys, so the central's link stays unencrypted
# and the peripheral sees no encryption at all.  (BTstack could re-derive
# a legacy LTK from its ER key for a central it has no bond with; the
# binding turns that off with sm_allow_ltk_reconstruction_without_le_
# device_db_entry(0), so an evicted bond is really gone.)
#
# For the 17 pairings the peripheral asks for security (ble.gap_pair(): a
# Security Request), which BTstack sends only once it has looked the new
# central's address up in its bonds.  A Pairing Request from the central can
# arrive during that lookup, which takes longer the more bonds there are,
# and BTstack before commit 434260a16 ("sm: respond to Pairing Request after
# Identity Resolution failed"), as shipped with MicroPython v1.28, never
# answers a Pairing Request that arrived during a lookup that then failed:
# from about 5 bonds on, a new central's pairing would stall.  The later
# reconnections are re-encryptions asked for by the central, as in
# ble_gap_pair_bond_restart.py.

from micropython import const
import time, machine, bluetooth, os, struct

TIMEOUT_MS = 5000
NUM_IDENTITIES = 17

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


def stored_bond_addresses(path):
    # The peer address of every bond in the file, most significant byte
    # first: BTstack's le_device_db entries ('BTD'+i, at offset 8), NimBLE's
    # peer security records ('NPS'+i, at offset 1, least significant first).
    addrs = []
    for _, tag, v in store_records(path):
        if tag >> 8 == 0x425444:
            addrs.append(bytes(v[8:14]))
        elif tag >> 8 == 0x4E5053:
            addrs.append(bytes(reversed(v[1:7])))
    return addrs


PERIPHERAL_FILE = "bond_test_lru_0"


def central_file(identity):
    return "bond_test_lru_1_{}".format(identity)


# What the central does, step by step: (label, identity, pairing).  Identity
# #0 re-encrypts just before the 17th pairing: that does not store anything,
# so its bond stays the least recently stored one.  By "back 0" its bond has
# been evicted, so the peripheral refuses to encrypt.
STEPS = (
    [("pair {}".format(i), i, True) for i in range(NUM_IDENTITIES - 1)]
    + [("reuse 0", 0, False), ("pair 16", 16, True)]
    + [("back 1", 1, False), ("back 0", 0, False)]
)
EVICTED = ("back 0",)


def require_bond_store():
    # Skip, before multitest.next(), on a stack that keeps no bonds of its
    # own (a build without a bond store), whichever instance runs it.
    try:
        ble.config("bond_file")
    except ValueError:
        multitest.skip()


# Peripheral: serves one connection per step.
def instance0():
    require_bond_store()
    start(PERIPHERAL_FILE, fresh=True)
    ble.gatts_register_services((SERVICE,))
    multitest.globals(BDADDR=ble.config("mac"))
    multitest.next()
    addrs = {}
    all_new_bonds = True
    for label, identity, pairing in STEPS:
        addr, encryption, wrote = serve_one_connection(
            label, ask=pairing, expect_encryption=label not in EVICTED
        )
        if pairing:
            addrs[identity] = addr
            all_new_bonds = all_new_bonds and encryption == (1, 0, 1) and wrote
        else:
            print(label, "same address", addr == addrs[identity])
            print(label, "encryption", encryption)
            print(label, "secrets written", wrote)
        if label == "pair 16":
            print("pairings", len(addrs), "all new bonds", all_new_bonds)
            print("distinct central addresses", len(set(addrs.values())))
            print_stored(addrs)
    print_stored(addrs)
    ble.active(0)
    remove(PERIPHERAL_FILE)


def print_stored(addrs):
    stored = stored_bond_addresses(PERIPHERAL_FILE)
    print("stored bonds", len(stored))
    print("identity 0 stored", addrs[0] in stored)
    print("identities 1..16 stored", all(addrs[i] in stored for i in range(1, NUM_IDENTITIES)))


def serve_one_connection(label, ask, expect_encryption=True):
    global secret_writes
    # The central announces when it is up (again, after its restart).
    multitest.wait("central ready {}".format(label))
    ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
    multitest.broadcast("peripheral ready {}".format(label))
    conn_handle, addr = wait_for_event(_IRQ_CENTRAL_CONNECT, TIMEOUT_MS)
    secret_writes = 0
    if ask:
        ble.gap_pair(conn_handle)
    encryption = None
    if expect_encryption:
        encryption = wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS)
    wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)
    if not expect_encryption:
        # A refused re-encryption encrypts nothing on this side.
        encryption = waiting_events.pop(_IRQ_ENCRYPTION_UPDATE, None)
    return addr, encryption, secret_writes > 0


# Central: each step is one run of the central, as a device of its own: it
# takes on the step's identity (its bond file, hence its address and bonds),
# connects, and is then restarted (hard) for the next step.  Progress is
# kept in a file, as the central's memory does not survive the restarts.
STATE_FILE = "bond_test_lru_1_state"


def instance1():
    require_bond_store()
    multitest.next()
    save_state(0, True)
    instance1_step()


def instance1_step():
    with open(STATE_FILE) as f:
        step, all_new_bonds = f.read().split()
    step, all_new_bonds = int(step), all_new_bonds == "True"
    label, identity, pairing = STEPS[step]
    start(central_file(identity), fresh=pairing)
    encryption, wrote = connect_and_encrypt(label, ask=not pairing)
    if pairing:
        all_new_bonds = all_new_bonds and encryption == (1, 0, 1) and wrote
    else:
        if label in EVICTED:
            # Refused keys: the link stays unencrypted.  BTstack still
            # reports the central bonded (its keys are kept), NimBLE not:
            # (0, 0, 1) and (0, 0, 0).
            encryption = encryption[0]
        print(label, "encryption", encryption)
        print(label, "secrets written", wrote)
    if label == "pair 16":
        print("pairings", NUM_IDENTITIES, "all new bonds", all_new_bonds)
    if step + 1 < len(STEPS):
        save_state(step + 1, all_new_bonds)
        restart("instance1_step")
    ble.active(0)
    remove(STATE_FILE)
    for identity in range(NUM_IDENTITIES):
        remove(central_file(identity))


def save_state(step, all_new_bonds):
    with open(STATE_FILE, "w") as f:
        f.write("{} {}".format(step, all_new_bonds))


def restart(resume):
    # Hard restart: unix instances are killed by the test runner, boards reset.
    multitest.expect_reboot(resume, 0)
    if hasattr(machine, "reset"):
        machine.reset()
    while True:
        time.sleep_ms(10)


def connect_and_encrypt(label, ask):
    global secret_writes
    multitest.broadcast("central ready {}".format(label))
    multitest.wait("peripheral ready {}".format(label))
    ble.gap_connect(*BDADDR)
    conn_handle = wait_for_event(_IRQ_PERIPHERAL_CONNECT, TIMEOUT_MS)
    secret_writes = 0
    if ask:
        ble.gap_pair(conn_handle)
    encryption = wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS)
    wrote = secret_writes > 0
    ble.gap_disconnect(conn_handle)
    wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, TIMEOUT_MS)
    return encryption, wrote


ble = bluetooth.BLE()
