# Unix port with BTstack talking to an HCI controller over an H4 UART.
#
# The controller's tty is named at run time by the MICROPYBTUART environment
# variable: a USB-serial HCI dongle (e.g. Zephyr's hci_uart sample on nRF) or
# a virtual controller on a pty.  H4 is forced even when libusb is installed,
# so the build does not depend on what the host machine happens to have.

FROZEN_MANIFEST ?= $(VARIANT_DIR)/manifest.py

MICROPY_PY_BLUETOOTH = 1
MICROPY_BLUETOOTH_BTSTACK = 1
MICROPY_BLUETOOTH_BTSTACK_H4 = 1
MICROPY_BLUETOOTH_BTSTACK_USB = 0

# Not needed to test Bluetooth; leaving them out avoids their submodules.
MICROPY_PY_BTREE = 0
MICROPY_PY_SSL = 0

# Test builds: keep symbols, for gdb and for callgrind in the benchmarks.
STRIP =
