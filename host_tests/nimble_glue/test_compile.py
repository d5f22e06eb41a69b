"""The NimBLE store glue compiles against each NimBLE it ships with, and works.

extmod/nimble/nimble_bond_store.c includes only NimBLE's host headers and the
bond store's core, so it can be compiled on the build machine, with the host
gcc, against:

* MicroPython's pinned lib/mynewt-nimble (NimBLE 1.4; unix, stm32, rp2), from
  the upstream tree (``MICROPY_DIR``);
* Espressif's esp-nimble, which the esp32 port builds with (``ESP_NIMBLE_DIR``:
  a checkout of github.com/espressif/esp-nimble at the commit ESP-IDF pins,
  e.g. 2cf7edde for ESP-IDF v5.3.1, in components/bt/host/nimble/nimble).

``glue_test.c`` then runs the glue and the store's core against each tree's
headers (under ASan and UBSan), calling the store callbacks as NimBLE does.

``include/`` stands in for the port: a host configuration (syscfg.h) and the
OS layer's types; ``esp-idf/`` for what ESP-IDF's build force-includes (see
mpoverlay/nimble_glue.py).  Each tree is skipped, with the reason, when its
input is not given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mpoverlay import nimble_glue
from mpoverlay.tree import available_upstream

HERE = Path(__file__).resolve().parent
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


def compile_glue(nimble: Path, out: Path, esp: bool) -> Path:
    """Compile the glue against the NimBLE tree ``nimble``; the object file."""
    result = nimble_glue.compile_glue(nimble_glue.GLUE, nimble, out, esp)
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
    with pytest.raises(ValueError, match="not a NimBLE tree"):
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


SANITIZE = ("-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all")


def run_glue_test(nimble: Path, tmp_path: Path, esp: bool) -> str:
    """Build glue_test.c with the glue and the core against ``nimble``; its output."""
    objects = []
    for source in (nimble_glue.GLUE, nimble_glue.CORE, HERE / "glue_test.c"):
        out = tmp_path / f"{source.stem}.o"
        result = nimble_glue.compile_glue(source, nimble, out, esp, extra=SANITIZE)
        assert result.returncode == 0, result.stderr
        objects.append(str(out))
    binary = tmp_path / "glue_test"
    subprocess.run(["gcc", *SANITIZE, "-o", str(binary), *objects], check=True, timeout=120)
    result = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("tree", ["mynewt-nimble", "esp-nimble"])
def test_glue_behaves_as_a_nimble_store(tmp_path: Path, tree: str) -> None:
    nimble = mynewt_nimble() if tree == "mynewt-nimble" else esp_nimble()
    if nimble is None:
        pytest.skip(f"no {tree} tree (MICROPY_DIR / ESP_NIMBLE_DIR): glue_test.c not run")
    output = run_glue_test(nimble, tmp_path, esp=tree == "esp-nimble")
    assert output.strip().endswith("checks passed"), output
    assert int(output.split()[-3]) > 90, output
