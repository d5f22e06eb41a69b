"""The NimBLE store glue compiles against each NimBLE it ships with.

extmod/nimble/nimble_bond_store.c includes only NimBLE's host headers and the
bond store's core, so it can be compiled on the build machine, with the host
gcc, against:

* MicroPython's pinned lib/mynewt-nimble (NimBLE 1.4; unix, stm32, rp2), from
  the upstream tree (``MICROPY_DIR``);
* Espressif's esp-nimble, which the esp32 port builds with (``ESP_NIMBLE_DIR``:
  a checkout of github.com/espressif/esp-nimble at the commit ESP-IDF pins,
  e.g. 2cf7edde for ESP-IDF v5.3.1, in components/bt/host/nimble/nimble).

``include/`` stands in for the port: a host configuration (syscfg.h) and the
OS layer's types; ``esp-idf/`` for what ESP-IDF's build force-includes.  Each
tree is skipped, with the reason, when its input is not given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mpoverlay.tree import available_upstream

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GLUE = REPO / "extmod" / "nimble" / "nimble_bond_store.c"
# MicroPython's own warning flags (ports/unix/Makefile) and the store's switch.
FLAGS = [
    "-std=gnu99",
    "-Os",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-DMICROPY_BLUETOOTH_NIMBLE_BOND_STORE=1",
]
ESP_NIMBLE_COMMIT = "2cf7edde63866f5663bbcdfb8776cf29c0809456"  # ESP-IDF v5.3.1's
API = {
    "mp_nimble_bond_store_bind",
    "mp_nimble_bond_store_set_callbacks",
    "mp_nimble_bond_store_import",
    "mp_nimble_bond_store_get_key",
    "mp_nimble_bond_store_set_key",
    "mp_nimble_bond_store_commit",
}


def mynewt_nimble() -> Path | None:
    tree = available_upstream(os.environ.get("MICROPY_DIR"))
    return tree / "lib" / "mynewt-nimble" if tree else None


def esp_nimble() -> Path | None:
    path = os.environ.get("ESP_NIMBLE_DIR")
    return Path(path).expanduser().resolve() if path else None


def compile_glue(nimble: Path, out: Path, esp: bool, cc: str = "gcc", *extra: str) -> Path:
    """Compile the glue against the NimBLE tree ``nimble``; the object file."""
    if not (nimble / "nimble" / "host" / "include" / "host" / "ble_store.h").is_file():
        raise AssertionError(
            f"{nimble} is not a NimBLE tree (no nimble/host/include/host/ble_store.h)"
        )
    includes = [HERE / "include"] + [
        nimble / d
        for d in (
            "nimble/host/include",
            "nimble/include",
            "porting/nimble/include",
            "nimble/transport/include",
            ".",
        )
    ]
    command = [cc, *FLAGS, *extra, "-c", "-o", str(out)]
    if esp:
        command += ["-include", str(HERE / "esp-idf" / "esp_err.h")]
    for include in includes:
        command += ["-isystem", str(include)]
    command += ["-I", str(REPO), str(GLUE)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return out


def symbols(obj: Path) -> dict[str, str]:
    """Defined symbols of ``obj``: name -> nm type letter."""
    listing = subprocess.run(["nm", str(obj)], capture_output=True, text=True, check=True).stdout
    return {p[2]: p[1] for p in (line.split() for line in listing.splitlines()) if len(p) == 3}


def test_glue_compiles_against_mynewt_nimble(tmp_path: Path) -> None:
    nimble = mynewt_nimble()
    if nimble is None:
        pytest.skip("no upstream tree (set MICROPY_DIR): lib/mynewt-nimble not checked")
    defined = symbols(compile_glue(nimble, tmp_path / "glue.o", esp=False))
    assert API <= {name for name, kind in defined.items() if kind == "T"}
    # NimBLE 1.4 has no store_gen_key_cb: the IRK goes in through the binding's sync_cb.
    assert "store_gen_key" not in defined


def test_glue_compiles_against_esp_nimble(tmp_path: Path) -> None:
    nimble = esp_nimble()
    if nimble is None:
        pytest.skip(
            "ESP_NIMBLE_DIR not set: the glue is not checked against esp-nimble "
            f"(github.com/espressif/esp-nimble at {ESP_NIMBLE_COMMIT[:8]}, ESP-IDF v5.3.1's)"
        )
    defined = symbols(compile_glue(nimble, tmp_path / "glue.o", esp=True))
    assert API <= {name for name, kind in defined.items() if kind == "T"}
    # esp-nimble asks the store for our IRK (store_gen_key_cb) at host startup.
    assert defined.get("store_gen_key") == "t"


def test_the_check_fails_on_a_tree_that_is_not_nimble(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="not a NimBLE tree"):
        compile_glue(tmp_path, tmp_path / "glue.o", esp=False)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no host gcc")
def test_the_check_fails_on_an_api_the_glue_misuses(tmp_path: Path) -> None:
    # A NimBLE whose ble_store_value_sec lacks a field the glue reads: the
    # compile check must turn red, not pass on an empty translation unit.
    nimble = mynewt_nimble() or esp_nimble()
    if nimble is None:
        pytest.skip("no NimBLE tree (MICROPY_DIR or ESP_NIMBLE_DIR) to break a copy of")
    broken = tmp_path / "nimble"
    shutil.copytree(nimble / "nimble" / "include", broken / "nimble" / "include")
    shutil.copytree(nimble / "nimble" / "host" / "include", broken / "nimble" / "host" / "include")
    shutil.copytree(nimble / "nimble" / "host" / "src", broken / "nimble" / "host" / "src")
    shutil.copytree(
        nimble / "porting" / "nimble" / "include", broken / "porting" / "nimble" / "include"
    )
    if (nimble / "nimble" / "transport" / "include").is_dir():
        shutil.copytree(
            nimble / "nimble" / "transport" / "include",
            broken / "nimble" / "transport" / "include",
        )
    header = broken / "nimble" / "host" / "include" / "host" / "ble_store.h"
    header.write_text(header.read_text().replace("uint8_t csrk_present:1;", "", 1))
    with pytest.raises(AssertionError, match="csrk_present"):
        compile_glue(broken, tmp_path / "glue.o", esp=nimble == esp_nimble())
