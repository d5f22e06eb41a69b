"""Benchmark: what the NimBLE bond store costs in code (printed, not pass/fail).

Two measurements of the store's text (the glue, extmod/nimble/nimble_bond_store.c,
and the core, extmod/bondstore/bondstore.c, with the VFS adapter where it can
be built):

* the unix NimBLE build's objects (x86-64, the port's own flags), built by
  ``make unix``;
* a cross-compile for an ESP32-class RISC-V core (rv32imc, as ESP32-C3/C6)
  against esp-nimble (``ESP_NIMBLE_DIR``) with Debian's riscv64-unknown-elf-gcc,
  at -Os and -O2 (ESP-IDF builds MicroPython with its "performance" setting).
  Xtensa (ESP32, -S3) has no toolchain in the registries these machines reach.

What cannot be measured is said so, with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import BUILD_DIR, nimble_glue
from .size import Sizes, format_table, parse_size

UNIX_OBJECTS = {
    "glue (nimble_bond_store.o)": "extmod/nimble/nimble_bond_store.o",
    "core (bondstore.o)": "extmod/bondstore/bondstore.o",
    "VFS adapter (bondstore_vfs.o)": "extmod/bondstore/bondstore_vfs.o",
}
RISCV_CC = "riscv64-unknown-elf-gcc"
RISCV_FLAGS = ("--specs=picolibc.specs", "-march=rv32imc_zicsr", "-mabi=ilp32")


def _size(obj: Path, tool: str = "size") -> Sizes:
    out = subprocess.run([tool, str(obj)], capture_output=True, text=True, check=True).stdout
    return parse_size(out)


def _total(rows: list[tuple[str, Sizes, bool]]) -> Sizes:
    return sum((s for _, s, _ in rows), Sizes(0, 0, 0))


def unix_report(build: Path) -> str:
    objects = {label: build / rel for label, rel in UNIX_OBJECTS.items()}
    missing = [str(p) for p in objects.values() if not p.is_file()]
    if missing:
        return f"unix (x86-64): not run: no NimBLE build ({missing[0]}); run make unix first"
    rows = [(label, _size(obj), False) for label, obj in objects.items()]
    rows.append(("store total", _total(rows), False))
    return format_table("unix nimble build, x86-64", rows)


def riscv_report(esp_nimble: Path | None) -> str:
    if esp_nimble is None:
        return "rv32imc (ESP32-C3 class): not run: ESP_NIMBLE_DIR not set"
    if shutil.which(RISCV_CC) is None:
        return (
            f"rv32imc (ESP32-C3 class): not run: no {RISCV_CC} (Debian: gcc-riscv64-unknown-elf)"
        )
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for opt in ("-Os", "-O2"):
            rows = []
            for label, source in (("glue", nimble_glue.GLUE), ("core", nimble_glue.CORE)):
                out = Path(tmp) / f"{source.stem}{opt}.o"
                result = nimble_glue.compile_glue(
                    source, esp_nimble, out, True, RISCV_CC, (*RISCV_FLAGS, opt)
                )
                if result.returncode != 0:
                    return f"rv32imc: compile failed:\n{result.stderr}"
                rows.append((label, _size(out, "riscv64-unknown-elf-size"), False))
            rows.append(("glue + core", _total(rows), False))
            tables.append(format_table(f"rv32imc {opt}, against esp-nimble", rows))
    return "\n\n".join(tables)


def run() -> str:
    esp = os.environ.get("ESP_NIMBLE_DIR")
    build = BUILD_DIR / "tree" / "ports" / "unix" / "build-nimble"
    parts = [unix_report(build), riscv_report(Path(esp).expanduser() if esp else None)]
    return "\n\n".join(parts)
