# Time from gap_connect() to an encrypted link when reconnecting to a bonded
# peripheral: warm (the peripheral stayed up) and after the peripheral
# restarted (it must load its bonds from its store first).  Prints the
# medians as metrics; the test output checks every reconnection was a
# re-encryption of the existing bond, not a new pairing.

from micropython import const
import time, machine, bluetooth, os

TIMEOUT_MS = 5000
ROUNDS = const(5)

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_SET_SECRET = const(30)

waiting_events = {}
secret_writes = 0


def irq(event, data):
    global secret_writes
    if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
        waiting_events[event] = data[0]
    elif event == _IRQ_ENCRYPTION_UPDATE:
        waiting_events[event] = data[1:4]
    elif event == _IRQ_SET_SECRET:
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
    return "bond_test_reconnect_{}".format(instance)


def start(instance, fresh=False):
    try:
        ble.config(bond_file=bond_file(instance))
    except ValueError:
        multitest.skip()
    if fresh:
        for suffix in ("", ".new", ".rounds"):
            try:
                os.remove(bond_file(instance) + suffix)
            except OSError:
                pass
    ble.config(bond=True, le_secure=False, mitm=False)
    ble.active(1)
    ble.irq(irq)


def serve(label):
    ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
    multitest.broadcast("ready " + label)
    wait_for_event(_IRQ_CENTRAL_CONNECT, TIMEOUT_MS)
    wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS)
    wait_for_event(_IRQ_CENTRAL_DISCONNECT, TIMEOUT_MS)


def restart_into_next_round():
    multitest.expect_reboot("instance0_restarted", 0)
    if hasattr(machine, "reset"):
        machine.reset()
    while True:
        time.sleep_ms(10)


def require_bond_store():
    # Skip, before multitest.next(), on a stack that keeps no bonds of its
    # own (a build without a bond store), whichever instance runs it.
    try:
        ble.config("bond_file")
    except ValueError:
        multitest.skip()


# Peripheral.
def instance0():
    require_bond_store()
    start(0, fresh=True)
    multitest.globals(BDADDR=ble.config("mac"))
    multitest.next()
    serve("pair")
    for i in range(ROUNDS):
        serve("warm {}".format(i))
    with open(bond_file(0) + ".rounds", "w") as f:
        f.write("0")
    restart_into_next_round()


def instance0_restarted():
    start(0)
    with open(bond_file(0) + ".rounds") as f:
        done = int(f.read())
    serve("restarted {}".format(done))
    with open(bond_file(0) + ".rounds", "w") as f:
        f.write(str(done + 1))
    if done + 1 < ROUNDS:
        restart_into_next_round()
    ble.active(0)
    for suffix in ("", ".new", ".rounds"):
        try:
            os.remove(bond_file(0) + suffix)
        except OSError:
            pass


# Central: times each reconnection.
def instance1():
    require_bond_store()
    global secret_writes
    start(1, fresh=True)
    multitest.next()
    labels = ["pair"] + ["warm {}".format(i) for i in range(ROUNDS)]
    labels += ["restarted {}".format(i) for i in range(ROUNDS)]
    times = {"warm": [], "restarted": []}
    for label in labels:
        multitest.wait("ready " + label)
        secret_writes = 0
        t0 = time.ticks_ms()
        ble.gap_connect(*BDADDR)
        conn_handle = wait_for_event(_IRQ_PERIPHERAL_CONNECT, TIMEOUT_MS)
        ble.gap_pair(conn_handle)
        encryption = wait_for_event(_IRQ_ENCRYPTION_UPDATE, TIMEOUT_MS)
        dt = time.ticks_diff(time.ticks_ms(), t0)
        print(label.split()[0], encryption, "new pairing:", secret_writes > 0)
        ble.gap_disconnect(conn_handle)
        wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, TIMEOUT_MS)
        kind = label.split()[0]
        if kind in times:
            times[kind].append(dt)
    # Medians: a single slow round (host scheduling) must not decide the result.
    warm = sorted(times["warm"])[ROUNDS // 2]
    restarted = sorted(times["restarted"])[ROUNDS // 2]
    multitest.output_metric("reconnect times ms: {}".format(times))
    multitest.output_metric("reconnect warm: median {} ms".format(warm))
    multitest.output_metric("reconnect after-restart: median {} ms".format(restarted))
    multitest.output_metric("reconnect ratio after-restart/warm: {:.2f}".format(restarted / warm))
    for suffix in ("", ".new"):
        try:
            os.remove(bond_file(1) + suffix)
        except OSError:
            pass
    ble.active(0)


ble = bluetooth.BLE()
