"""MicroPython's unix port as a device on the virtual radio.

:func:`micropython_instance` runs ``micropython SCRIPT`` as a
:class:`vradio.instance.LineInstance` on a controller's pty
(``MICROPYBTUART``).  Its ``HOME`` is the device's flash: the build keeps
its bonds in ``$HOME/.micropython/btstack_bonds`` (BTstack) or
``nimble_bonds`` (NimBLE), so killing the process and starting another with
the same ``home`` is a power cut followed by a boot of the same device.

The address helpers convert between MicroPython's ``(addr_type, addr)``
(``ble.config("mac")``, IRQ data; ``addr`` in display order, MSB first) and
bumble's ``hci.Address``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from bumble import hci

from vradio.instance import LineInstance

BOND_DIR = Path(".micropython")
# MicroPython's addr_type values (extmod/modbluetooth.h).
ADDR_TYPE_PUBLIC = 0
ADDR_TYPE_RANDOM = 1


def micropython_instance(
    binary: Path | str,
    script: Path | str,
    uart: str,
    home: Path | str,
    name: str = "micropython",
    extra_env: Mapping[str, str] | None = None,
) -> LineInstance:
    """A (not yet started) unix MicroPython running ``script`` on the pty ``uart``.

    The environment is only what the instance needs, so that nothing from
    the test runner's (its HOME, a MICROPYPATH) changes what the device sees.
    """
    env = {
        "MICROPYBTUART": uart,
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **(extra_env or {}),
    }
    return LineInstance([binary, script], env, cwd=home, name=name)


def bond_file(home: Path | str, stack: str = "btstack") -> Path:
    """Where the unix build of ``stack`` keeps the bonds of the device living in ``home``."""
    return Path(home) / BOND_DIR / f"{stack}_bonds"


def address_from_micropython(addr_type: int, addr_hex: str) -> hci.Address:
    """bumble's address for MicroPython's ``(addr_type, addr)`` (addr as hex)."""
    if addr_type not in (ADDR_TYPE_PUBLIC, ADDR_TYPE_RANDOM):
        raise ValueError(f"not an LE address type: {addr_type}")
    kind = (
        hci.Address.PUBLIC_DEVICE_ADDRESS if addr_type == 0 else hci.Address.RANDOM_DEVICE_ADDRESS
    )
    return hci.Address(bytes.fromhex(addr_hex)[::-1], kind)


def address_to_micropython(address: hci.Address) -> tuple[int, str]:
    """MicroPython's ``(addr_type, addr hex)`` for ``address`` (identity types fold in)."""
    addr_type = ADDR_TYPE_PUBLIC if address.is_public else ADDR_TYPE_RANDOM
    return addr_type, bytes(address)[::-1].hex()
