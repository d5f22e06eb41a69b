# Unix port with NimBLE talking to an HCI controller over an H4 UART.
#
# The controller's tty is named at run time by the MICROPYBTUART environment
# variable: a USB-serial HCI dongle (e.g. Zephyr's hci_uart sample on nRF) or
# a virtual controller on a pty.  (NimBLE on unix always uses H4.)

FROZEN_MANIFEST ?= $(VARIANT_DIR)/manifest.py

MICROPY_PY_BLUETOOTH = 1
MICROPY_BLUETOOTH_NIMBLE = 1

# Not needed to test Bluetooth; leaving them out avoids their submodules.
MICROPY_PY_BTREE = 0
MICROPY_PY_SSL = 0

# Test builds: keep symbols, for gdb and for callgrind in the benchmarks.
STRIP =
