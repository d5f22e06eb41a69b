"""The pure parts of ``mpoverlay rp2``: inputs, mbedtls substitution, publishing."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpoverlay import rp2
from mpoverlay.build import BuildError
from mpoverlay.lock import Pin
from mpoverlay.upstream import Finding, UpstreamError, mbedtls_version, substitute_for

MBEDTLS = Pin("lib/mbedtls", "https://x/mbedtls", "1" * 40, substitute="3.6")


def mbedtls_tree(root: Path, version: str) -> Path:
    inc = root / "include" / "mbedtls"
    inc.mkdir(parents=True)
    (inc / "build_info.h").write_text(
        f'#define MBEDTLS_VERSION_NUMBER 0x0\n#define MBEDTLS_VERSION_STRING         "{version}"\n'
    )
    return root


def test_mbedtls_version(tmp_path: Path) -> None:
    assert mbedtls_version(mbedtls_tree(tmp_path / "m", "3.6.6")) == "3.6.6"
    assert mbedtls_version(tmp_path) is None


def test_upstream_copy_wins_over_substitute(tmp_path: Path) -> None:
    upstream = tmp_path / "up" / "lib" / "mbedtls"
    upstream.mkdir(parents=True)
    (upstream / "README.md").write_text("mbedtls\n")
    given = mbedtls_tree(tmp_path / "deb", "3.6.6")
    assert substitute_for(MBEDTLS, upstream, given) is None


def test_empty_submodule_uses_matching_substitute(tmp_path: Path) -> None:
    upstream = tmp_path / "up" / "lib" / "mbedtls"
    upstream.mkdir(parents=True)
    given = mbedtls_tree(tmp_path / "deb", "3.6.6")
    assert substitute_for(MBEDTLS, upstream, given) == given
    assert substitute_for(MBEDTLS, tmp_path / "missing", given) == given


@pytest.mark.parametrize("version", ["3.5.2", "3.60.1", "2.28.8"])
def test_substitute_of_wrong_version_is_refused(tmp_path: Path, version: str) -> None:
    given = mbedtls_tree(tmp_path / "deb", version)
    with pytest.raises(UpstreamError, match="not an mbedtls 3.6.x"):
        substitute_for(MBEDTLS, tmp_path / "empty", given)


def test_empty_submodule_without_substitute_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(UpstreamError, match="MBEDTLS_DIR"):
        substitute_for(MBEDTLS, tmp_path / "empty", None)


def test_substitution_is_reported_clearly() -> None:
    text = str(Finding("lib/mbedtls", "107ea89daaef" + "0" * 28, None, "/x (mbedtls 3.6.6)"))
    assert text == (
        "lib/mbedtls: SUBSTITUTED by /x (mbedtls 3.6.6) (lock pins 107ea89daaef, not in this tree)"
    )


def test_inputs_from_env(tmp_path: Path) -> None:
    inputs = rp2.Rp2Inputs.from_env(
        {"MBEDTLS_DIR": str(tmp_path / "m"), "PICOTOOL_FETCH_FROM_GIT_PATH": str(tmp_path / "p")}
    )
    assert inputs.substitutes() == {"lib/mbedtls": tmp_path / "m"}
    assert rp2.picotool_dir(inputs) == tmp_path / "p"
    empty = rp2.Rp2Inputs.from_env({"MBEDTLS_DIR": ""})
    assert empty.substitutes() == {}
    assert rp2.picotool_dir(empty) == rp2.PICOTOOL_CACHE


def test_config_build_dirs_and_cmake_args() -> None:
    full, bare = rp2.Rp2Config("RPI_PICO_W"), rp2.Rp2Config("RPI_PICO2_W", bond_store=False)
    assert (full.build_name, full.cmake_args) == ("build-RPI_PICO_W", [])
    assert bare.build_name == "build-RPI_PICO2_W-nostore"
    assert bare.cmake_args == ["-DMICROPY_BLUETOOTH_BTSTACK_BOND_STORE=OFF"]


def test_build_env_passes_cmake_args_in_the_environment() -> None:
    base = {"PATH": "/bin", "MAKEFLAGS": "BOARD=RPI_PICO_W -j2", "CMAKE_ARGS": "-DX=1"}
    env = rp2.build_env(base, rp2.Rp2Config("RPI_PICO2_W", False), Path("/p"), Path("/t"))
    assert env["PATH"] == "/bin"
    assert "MAKEFLAGS" not in env  # an enclosing make's BOARD=... must not leak in
    assert env["CMAKE_ARGS"] == "-DMICROPY_BLUETOOTH_BTSTACK_BOND_STORE=OFF"
    assert env["PICOTOOL_FETCH_FROM_GIT_PATH"] == "/p"
    # mpy-cross is built beforehand, where CMake would look for it.
    assert env["MICROPY_MPYCROSS"] == "/t/mpy-cross/build/mpy-cross"
    full = rp2.build_env(base, rp2.Rp2Config("RPI_PICO_W"), Path("/p"), Path("/t"))
    assert full["CMAKE_ARGS"] == ""


def test_unknown_board_is_refused() -> None:
    with pytest.raises(BuildError):
        rp2.check_board("RPI_PICO")


def test_publish_copies_uf2_and_elf(tmp_path: Path) -> None:
    built = tmp_path / "tree" / "ports" / "rp2" / "build-RPI_PICO_W"
    built.mkdir(parents=True)
    (built / "firmware.uf2").write_bytes(b"UF2\n")
    (built / "firmware.elf").write_bytes(b"\x7fELF")
    uf2, elf = rp2.publish(built, "RPI_PICO_W", tmp_path / "build")
    assert (uf2, elf) == rp2.published_paths("RPI_PICO_W", tmp_path / "build")
    assert uf2 == tmp_path / "build" / "rp2-RPI_PICO_W" / "firmware.uf2"
    assert uf2.read_bytes() == b"UF2\n" and elf.read_bytes() == b"\x7fELF"
    assert sorted(p.name for p in uf2.parent.iterdir()) == ["firmware.elf", "firmware.uf2"]


def test_publish_fails_when_not_built(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="was not built"):
        rp2.publish(tmp_path, "RPI_PICO_W", tmp_path / "build")


def test_features_from_symbols() -> None:
    got = rp2.features({"mp_bluetooth_gap_pair", "mp_bluetooth_set_bond_file"})
    assert [k for k, v in got.items() if v] == [
        "pairing/bonding (MICROPY_PY_BLUETOOTH_ENABLE_PAIRING_BONDING)",
        "ble.config(bond_file=...) (MICROPY_PY_BLUETOOTH_ENABLE_BOND_FILE)",
    ]
