"""Compile the NimBLE store glue outside a port, with any gcc.

extmod/nimble/nimble_bond_store.c includes only NimBLE's host headers and the
bond store's core, so it builds against a bare NimBLE tree (lib/mynewt-nimble,
or Espressif's esp-nimble) given a host configuration and the OS layer's
types: host_tests/nimble_glue/include stands in for the port, and
host_tests/nimble_glue/esp-idf for what ESP-IDF's build force-includes.  The
compile check (host_tests/nimble_glue) and the size report (nimble_size.py)
use the same command.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from . import REPO_ROOT

PORT_STANDIN = REPO_ROOT / "host_tests" / "nimble_glue"
GLUE = REPO_ROOT / "extmod" / "nimble" / "nimble_bond_store.c"
CORE = REPO_ROOT / "extmod" / "bondstore" / "bondstore.c"
# MicroPython's warning flags, the store's switch, and what the esp32 port sets.
FLAGS = (
    "-std=gnu99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-DMICROPY_BLUETOOTH_NIMBLE_BOND_STORE=1",
    "-DMP_BONDSTORE_MIGRATE_V1=0",
)
TREE_INCLUDES = (
    "nimble/host/include",
    "nimble/include",
    "porting/nimble/include",
    "nimble/transport/include",
    ".",
)


def is_nimble_tree(path: Path) -> bool:
    return (path / "nimble" / "host" / "include" / "host" / "ble_store.h").is_file()


def compile_command(
    source: Path,
    nimble: Path,
    out: Path,
    esp: bool,
    cc: str = "gcc",
    extra: Sequence[str] = ("-Os",),
) -> list[str]:
    """The command compiling ``source`` against the NimBLE tree ``nimble`` into ``out``."""
    command = [cc, *FLAGS, *extra, "-c", "-o", str(out)]
    if esp:
        command += ["-include", str(PORT_STANDIN / "esp-idf" / "esp_err.h")]
    # NimBLE's own headers are system headers here: their warnings are not ours.
    for include in (PORT_STANDIN / "include", *(nimble / d for d in TREE_INCLUDES)):
        command += ["-isystem", str(include)]
    return [*command, "-I", str(REPO_ROOT), str(source)]


def compile_glue(
    source: Path,
    nimble: Path,
    out: Path,
    esp: bool,
    cc: str = "gcc",
    extra: Sequence[str] = ("-Os",),
) -> subprocess.CompletedProcess[str]:
    if not is_nimble_tree(nimble):
        raise ValueError(
            f"{nimble} is not a NimBLE tree (no nimble/host/include/host/ble_store.h)"
        )
    command = compile_command(source, nimble, out, esp, cc, extra)
    return subprocess.run(command, capture_output=True, text=True, timeout=120)
