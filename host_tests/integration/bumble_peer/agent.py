# MicroPython side of test_bumble_peer.py (runs on the unix port, not CPython).
#
# A BLE agent driven line by line: each stdin line is one command, each BLE
# event and each command's result is one stdout line, so the test can play a
# scenario against an independent Bumble host and wait for what it expects.
# Commands (space separated):
#   config KEY=VALUE...  ble.config(...) (VALUE: int, True/False/None or a string)
#   active 0|1           ble.active(...)
#   addr                 ADDR <addr_type> <hex>: this device's current address
#   adv                  advertise connectably (20 ms)   stopadv
#   connect TYPE HEX     ble.gap_connect(...)             disconnect HANDLE
#   pair HANDLE          ble.gap_pair(...)                bonds
#   quit                 ble.active(0) and exit
# Every command answers "OK <command>" or "ERR <command> <exception> <args>".

import binascii
import select
import sys
import time

import bluetooth

ADV_INTERVAL_US = 20_000
# Flags (LE General Discoverable, BR/EDR not supported) and the name "mpy".
ADV_DATA = b"\x02\x01\x06\x04\x09mpy"

# IRQ numbers (extmod/modbluetooth.h).
CONNECT_EVENTS = {
    1: "CENTRAL_CONNECT",
    2: "CENTRAL_DISCONNECT",
    7: "PERIPHERAL_CONNECT",
    8: "PERIPHERAL_DISCONNECT",
}
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_GET_SECRET = 29
_IRQ_SET_SECRET = 30

ble = bluetooth.BLE()


def hexs(data):
    return "-" if data is None else binascii.hexlify(bytes(data)).decode()


def irq(event, data):
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
        # Reported, but left to the stack's own bond store (None = not handled).
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
    ble.active(int(args[0]))


def cmd_addr(args):
    addr_type, addr = ble.config("mac")
    print("ADDR", addr_type, hexs(addr))


def cmd_adv(args):
    ble.gap_advertise(ADV_INTERVAL_US, ADV_DATA)


def cmd_stopadv(args):
    ble.gap_advertise(None)


def cmd_connect(args):
    ble.gap_connect(int(args[0]), binascii.unhexlify(args[1]))


def cmd_disconnect(args):
    ble.gap_disconnect(int(args[0]))


def cmd_pair(args):
    ble.gap_pair(int(args[0]))


def cmd_bonds(args):
    # One line, so that the reader sees the whole list at once:
    # BONDS <n> <addr_type>,<hex>,<authenticated>,<secure>...
    bonds = ble.gap_bonds()
    fields = [f"{t},{hexs(a)},{int(auth)},{int(sc)}" for t, a, auth, sc in bonds]
    print("BONDS", len(bonds), *fields)


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
    "connect": cmd_connect,
    "disconnect": cmd_disconnect,
    "pair": cmd_pair,
    "bonds": cmd_bonds,
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


def main():
    # Poll stdin rather than block on it: a blocking read would stop the
    # unix port's scheduler, and with it the Bluetooth stack.
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    # Installed before active(1), so the secrets the stack reads and writes
    # while it starts are reported too.
    ble.irq(irq)
    print("READY")
    while True:
        if not poller.poll(0):
            time.sleep_ms(1)
            continue
        line = sys.stdin.readline()
        if not line:
            # The test went away: behave like a device losing power.
            sys.exit(1)
        if line.split():
            run(line.split())


main()
