"""The NimBLE size report says what it could not measure, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpoverlay import nimble_size


def test_unix_report_without_a_build_says_not_run(tmp_path: Path) -> None:
    report = nimble_size.unix_report(tmp_path)
    assert report.startswith("unix (x86-64): not run: no NimBLE build")


def test_riscv_report_without_esp_nimble_says_not_run() -> None:
    assert nimble_size.riscv_report(None).endswith("not run: ESP_NIMBLE_DIR not set")


def test_riscv_report_without_the_cross_compiler_says_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nimble_size.shutil, "which", lambda _name: None)
    assert "not run: no riscv64-unknown-elf-gcc" in nimble_size.riscv_report(tmp_path)


def test_unix_report_sums_the_store_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = {
        "nimble_bond_store.o": (3000, 0, 8),
        "bondstore.o": (4000, 0, 0),
        "bondstore_vfs.o": (3000, 376, 257),
    }
    for rel in nimble_size.UNIX_OBJECTS.values():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    monkeypatch.setattr(
        nimble_size, "_size", lambda obj, tool="size": nimble_size.Sizes(*sizes[obj.name])
    )
    report = nimble_size.unix_report(tmp_path)
    assert report.splitlines()[-1].split() == ["store", "total", "10,000", "376", "265"]
