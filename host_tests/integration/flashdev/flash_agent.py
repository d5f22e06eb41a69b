# MicroPython side of the flashdev rig (runs on the unix BTstack port).
#
#   micropython flash_agent.py CONFIG.json
#
# Boot snippet: a FlashDev over the image named in CONFIG (flashdev.py) is
# mounted at /flash (littlefs2 or FAT), ble.config(bond_file=...) points the
# bond store at it, then a line-driven BLE agent runs, with the protocol of
# ../bumble_peer/agent.py ("OK <cmd>" / "ERR <cmd> <exc> <args>", events as
# lines) plus:
#   unpair TYPE HEX   ble.gap_unpair(...)       stats   STATS <json> (also to
#   gatts             one notify characteristic           CONFIG's stats file)
#   log MS            append a line to /flash/log.txt every MS ms (0: stop)
#   readlog           LOG <lines> <first bad line or -1>
#   dump PATH         FILE <hex of the file, or ->
#   write PATH HEX    replace a file's content
#   fill              fill the filesystem with block-sized files: FILLED <files>
#   kbint             raise KeyboardInterrupt after the next block write;
#                     the main loop prints KBINT where it arrives
# Boot prints MOUNTED <fs> or MOUNTFAIL <exc>, then READY.

import binascii
import json
import os
import select
import sys
import time

import bluetooth
import vfs
from flashdev import FlashDev

ADV_INTERVAL_US = 20_000
ADV_DATA = b"\x02\x01\x06\x04\x09mpy"
SERVICE_UUID = bluetooth.UUID("6e400001-b5a3-f393-e0a9-e50e24dcca9e")
CHAR_UUID = bluetooth.UUID("6e400003-b5a3-f393-e0a9-e50e24dcca9e")
FLAG_READ = 0x0002
FLAG_NOTIFY = 0x0010
LOG_LINE_PAD = "x" * 40

CONNECT_EVENTS = {
    1: "CENTRAL_CONNECT",
    2: "CENTRAL_DISCONNECT",
    7: "PERIPHERAL_CONNECT",
    8: "PERIPHERAL_DISCONNECT",
}
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_GET_SECRET = 29
_IRQ_SET_SECRET = 30

with open(sys.argv[1]) as f:
    CONFIG = json.loads(f.read())
MOUNT = CONFIG.get("mount", "/flash")
LOG_FILE = MOUNT + "/log.txt"

dev = FlashDev(
    CONFIG["image"],
    CONFIG.get("block_size", 4096),
    CONFIG.get("cut_at", 0),
    CONFIG.get("cut_keep", -1),
    CONFIG.get("service_us", -1),
)
ble = bluetooth.BLE()
log = {"period": 0, "next": 0, "seq": 0, "errors": 0}


def mount():
    fs = CONFIG.get("fs", "lfs2")
    try:
        if fs == "fat":
            vfs.mount(vfs.VfsFat(dev), MOUNT)
        else:
            vfs.mount(vfs.VfsLfs2(dev, progsize=CONFIG.get("progsize", 256)), MOUNT)
    except Exception as e:
        print("MOUNTFAIL", type(e).__name__, *e.args)
        return
    print("MOUNTED", fs)


def hexs(data):
    return "-" if data is None else binascii.hexlify(bytes(data)).decode()


def irq(event, data):
    if dev.depth:
        # Delivered by a BTstack poll that ran inside a block-device call.
        dev.counters["irqs_in_calls"] = dev.counters.get("irqs_in_calls", 0) + 1
    if event in CONNECT_EVENTS:
        conn_handle, addr_type, addr = data
        print(CONNECT_EVENTS[event], conn_handle, addr_type, hexs(addr))
    elif event == _IRQ_ENCRYPTION_UPDATE:
        conn_handle, encrypted, authenticated, bonded, key_size = data
        print("ENC", conn_handle, int(encrypted), int(authenticated), int(bonded), key_size)
    elif event == _IRQ_GET_SECRET:
        sec_type, index, key = data
        print("GET_SECRET", sec_type, index, hexs(key))
    elif event == _IRQ_SET_SECRET:
        sec_type, key, value = data
        print("SET_SECRET", sec_type, hexs(key), "-" if value is None else len(value))
    else:
        print("IRQ", event)
    return None


def parse_value(text):
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    try:
        return int(text)
    except ValueError:
        return text


def cmd_config(args):
    kwargs = {}
    for arg in args:
        key, value = arg.split("=", 1)
        kwargs[key] = parse_value(value)
    ble.config(**kwargs)


def cmd_active(args):
    if int(args[0]):
        ble.config(bond_file=CONFIG.get("bond_file", MOUNT + "/bonds"))
    ble.active(int(args[0]))


def cmd_addr(args):
    addr_type, addr = ble.config("mac")
    print("ADDR", addr_type, hexs(addr))


def cmd_adv(args):
    ble.gap_advertise(ADV_INTERVAL_US, ADV_DATA)


def cmd_stopadv(args):
    ble.gap_advertise(None)


def cmd_disconnect(args):
    ble.gap_disconnect(int(args[0]))


def cmd_bonds(args):
    bonds = ble.gap_bonds()
    fields = [f"{t},{hexs(a)},{int(auth)},{int(sc)}" for t, a, auth, sc in bonds]
    print("BONDS", len(bonds), *fields)


def cmd_unpair(args):
    ble.gap_unpair(int(args[0]), binascii.unhexlify(args[1]))


def cmd_gatts(args):
    ((handle,),) = ble.gatts_register_services(
        ((SERVICE_UUID, ((CHAR_UUID, FLAG_READ | FLAG_NOTIFY),)),)
    )
    ble.gatts_write(handle, b"mpy")
    print("GATTS", handle)


def cmd_stats(args):
    stats = dev.stats()
    if CONFIG.get("stats_path"):
        dev.write_stats(CONFIG["stats_path"])
    print("STATS", json.dumps(stats))


def cmd_log(args):
    log["period"] = int(args[0])
    log["next"] = time.ticks_ms()


def log_line(n):
    return f"{n:06d} {LOG_LINE_PAD}\n"


def cmd_readlog(args):
    n = 0
    bad = -1
    try:
        with open(LOG_FILE) as f:
            for line in f:
                if bad < 0 and line != log_line(n):
                    bad = n
                n += 1
    except OSError:
        pass
    print("LOG", n, bad, log["seq"], log["errors"])


def cmd_dump(args):
    try:
        with open(args[0], "rb") as f:
            data = f.read()
    except OSError:
        data = None
    print("FILE", hexs(data))


def cmd_write(args):
    with open(args[0], "wb") as f:
        f.write(binascii.unhexlify(args[1]))


def cmd_fill(args):
    # Whole-block files until littlefs has no block left (a failed write
    # frees its blocks again, so keep going with the next file).
    block = bytes(CONFIG.get("block_size", 4096))
    n = 0
    while True:
        try:
            with open(f"{MOUNT}/fill{n}.bin", "wb") as f:
                f.write(block)
        except OSError:
            break
        n += 1
    # New files stop when a directory block has no room; data blocks may be
    # left: take them by growing one file a block at a time.
    grown = 0
    while n:
        try:
            with open(MOUNT + "/fill0.bin", "ab") as f:
                f.write(block)
        except OSError:
            break
        grown += 1
    print("FILLED", n, grown, "free", os.statvfs(MOUNT)[3])


def cmd_kbint(args):
    dev.kbint_at_write = dev.counters.get("writes", 0) + 1


def cmd_quit(args):
    ble.active(0)
    print("OK quit")
    sys.exit(0)


COMMANDS = {
    "config": cmd_config,
    "active": cmd_active,
    "addr": cmd_addr,
    "adv": cmd_adv,
    "stopadv": cmd_stopadv,
    "disconnect": cmd_disconnect,
    "bonds": cmd_bonds,
    "unpair": cmd_unpair,
    "gatts": cmd_gatts,
    "stats": cmd_stats,
    "log": cmd_log,
    "readlog": cmd_readlog,
    "dump": cmd_dump,
    "write": cmd_write,
    "fill": cmd_fill,
    "kbint": cmd_kbint,
    "quit": cmd_quit,
}


def run(words):
    name = words[0]
    try:
        COMMANDS[name](words[1:])
    except Exception as e:
        print("ERR", name, type(e).__name__, *e.args)
        return
    print("OK", name)


def append_log():
    # The application's own use of the filesystem, from the main loop.
    line = log_line(log["seq"])
    try:
        with open(LOG_FILE, "a") as f:
            f.write(line)
        log["seq"] += 1
    except Exception as e:
        log["errors"] += 1
        print("LOGERR", log["seq"], type(e).__name__, *e.args)


def main():
    mount()
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    ble.irq(irq)
    print("READY")
    while True:
        if log["period"] and time.ticks_diff(time.ticks_ms(), log["next"]) >= 0:
            log["next"] = time.ticks_add(log["next"], log["period"])
            append_log()
        if not poller.poll(0):
            time.sleep_ms(1)
            continue
        line = sys.stdin.readline()
        if not line:
            sys.exit(1)
        if line.split():
            try:
                run(line.split())
            except KeyboardInterrupt:
                print("KBINT", line.split()[0])


main()
