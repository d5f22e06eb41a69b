"""Build ``ports/rp2`` firmware (Pico W / Pico 2 W) from a prepared tree.

Inputs that keep a machine offline (both optional when it has network):

- ``MBEDTLS_DIR``: an mbedtls 3.6.x source tree, used when the upstream
  tree's ``lib/mbedtls`` is empty (the substitution is reported);
- ``PICOTOOL_FETCH_FROM_GIT_PATH``: a directory holding an installed picotool
  (``<dir>/picotool/picotoolConfig.cmake``), as pico-sdk understands it.
  Without it, picotool is downloaded and built once into ``build/picotool``.

CMake options go through the ``CMAKE_ARGS`` environment variable, which the
rp2 Makefile appends to (on make's command line it would replace the board).
``BUILD=`` on make's command line would also reach the make that CMake runs
for mpy-cross (which then builds where CMake does not look), so mpy-cross is
built first and named by ``MICROPY_MPYCROSS``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import BUILD_DIR
from .build import BuildError, Built, make
from .tree import tree_lock

BOARDS = ("RPI_PICO_W", "RPI_PICO2_W")
MBEDTLS_PATH = "lib/mbedtls"
PICOTOOL_CACHE = BUILD_DIR / "picotool"
# Variables of an enclosing make (e.g. `make rp2 BOARD=...`) must not leak
# into the port's make: they would override what we pass.
_MAKE_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "CMAKE_ARGS", "BUILD")
_MPY_CROSS = Path("mpy-cross") / "build" / "mpy-cross"


@dataclass(frozen=True)
class Rp2Inputs:
    """Where mbedtls and picotool come from when the machine has no network."""

    mbedtls_dir: Path | None = None
    picotool_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Rp2Inputs:
        def path(name: str) -> Path | None:
            value = env.get(name)
            return Path(value).expanduser().resolve() if value else None

        return cls(path("MBEDTLS_DIR"), path("PICOTOOL_FETCH_FROM_GIT_PATH"))

    def substitutes(self) -> dict[str, Path]:
        return {MBEDTLS_PATH: self.mbedtls_dir} if self.mbedtls_dir else {}


@dataclass(frozen=True)
class Rp2Config:
    """One rp2 build: a board, with or without our bond store."""

    board: str
    bond_store: bool = True

    @property
    def build_name(self) -> str:
        return f"build-{self.board}" + ("" if self.bond_store else "-nostore")

    @property
    def cmake_args(self) -> list[str]:
        return [] if self.bond_store else ["-DMICROPY_BLUETOOTH_BTSTACK_BOND_STORE=OFF"]


def check_board(board: str) -> str:
    if board not in BOARDS:
        raise BuildError(f"unknown rp2 board {board!r}; choose from {BOARDS}")
    return board


def picotool_dir(inputs: Rp2Inputs) -> Path:
    """PICOTOOL_FETCH_FROM_GIT_PATH for pico-sdk: the user's, or a shared cache."""
    return inputs.picotool_dir or PICOTOOL_CACHE


def clean_env(base: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in base.items() if k not in _MAKE_ENV}


def build_env(
    base: Mapping[str, str], config: Rp2Config, picotool: Path, tree: Path
) -> dict[str, str]:
    env = clean_env(base)
    env["CMAKE_ARGS"] = " ".join(config.cmake_args)
    env["PICOTOOL_FETCH_FROM_GIT_PATH"] = str(picotool)
    env["MICROPY_MPYCROSS"] = str(tree / _MPY_CROSS)
    return env


def build_dir(tree: Path, config: Rp2Config) -> Path:
    return tree / "ports" / "rp2" / config.build_name


def build_rp2(tree: Path, config: Rp2Config, inputs: Rp2Inputs, label: str = "") -> Built:
    """Build (incrementally) ``ports/rp2`` of ``tree``; return where firmware.elf is."""
    check_board(config.board)
    out = build_dir(tree, config)
    picotool = picotool_dir(inputs)
    picotool.mkdir(parents=True, exist_ok=True)
    log = BUILD_DIR / "logs" / f"rp2-{label or tree.name}-{config.build_name}.log"
    # The Makefile runs CMake only when the build directory has no Makefile:
    # a half-configured directory from an interrupted run would keep old options.
    if (out / "CMakeCache.txt").is_file() and not (out / "Makefile").is_file():
        shutil.rmtree(out)
    t0 = time.monotonic()
    with tree_lock():
        make([], tree / "mpy-cross", log.with_name("mpy-cross.log"), clean_env(os.environ))
        make(
            [f"BOARD={config.board}", f"BUILD={config.build_name}"],
            tree / "ports" / "rp2",
            log,
            build_env(os.environ, config, picotool, tree),
        )
    return Built(
        f"rp2 {config.board} ({label or tree.name})", out / "firmware.elf", time.monotonic() - t0
    )


def published_paths(board: str, root: Path = BUILD_DIR) -> tuple[Path, Path]:
    """Where ``rp2`` publishes the firmware for ``board``: (uf2, elf)."""
    out = root / f"rp2-{board}"
    return out / "firmware.uf2", out / "firmware.elf"


def publish(built_dir: Path, board: str, root: Path = BUILD_DIR) -> tuple[Path, Path]:
    """Copy firmware.uf2 and firmware.elf of a build into ``build/rp2-<BOARD>``."""
    paths = published_paths(board, root)
    for dest in paths:
        src = built_dir / dest.name
        if not src.is_file():
            raise BuildError(f"{src} was not built")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".tmp")
        shutil.copy2(src, tmp)
        os.replace(tmp, dest)
    return paths


def find_picotool(inputs: Rp2Inputs) -> Path | None:
    """The picotool binary pico-sdk used (or one on PATH)."""
    candidate = picotool_dir(inputs) / "picotool" / "picotool"
    if candidate.is_file():
        return candidate
    found = shutil.which("picotool")
    return Path(found) if found else None


def picotool_info(picotool: Path, uf2: Path) -> str:
    proc = subprocess.run(
        [str(picotool), "info", "-a", str(uf2)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BuildError(f"picotool info {uf2} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


# Symbols that show a feature is compiled into the firmware.
FEATURE_SYMBOLS = {
    "pairing/bonding (MICROPY_PY_BLUETOOTH_ENABLE_PAIRING_BONDING)": "mp_bluetooth_gap_pair",
    "bond store (MICROPY_BLUETOOTH_BTSTACK_BOND_STORE)": "mp_bluetooth_btstack_bond_store_init",
    "ble.config(bond_file=...) (MICROPY_PY_BLUETOOTH_ENABLE_BOND_FILE)": (
        "mp_bluetooth_set_bond_file"
    ),
    "LE device DB on TLV (le_device_db_tlv.c)": "le_device_db_tlv_configure",
}


def features(symbol_names: set[str]) -> dict[str, bool]:
    """Which of FEATURE_SYMBOLS' features a firmware with these symbols has."""
    return {what: sym in symbol_names for what, sym in FEATURE_SYMBOLS.items()}


def symbol_names(elf: Path) -> set[str]:
    proc = subprocess.run(
        ["arm-none-eabi-nm", "--defined-only", str(elf)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {line.split()[-1] for line in proc.stdout.splitlines() if len(line.split()) == 3}
