"""Applying the overlay to an upstream tree."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from tooling_fakes import git, make_patch

from mpoverlay import REPO_ROOT
from mpoverlay.overlay import Overlay, OverlayError, _sync, prepare


def test_applies_patches_and_copies_files(fake_upstream: Path, fake_repo: Path, tmp_path: Path):
    tree = tmp_path / "tree"
    assert prepare(fake_upstream, tree, Overlay(fake_repo)) is True
    assert "return 42" in (tree / "ports/unix/main.c").read_text()
    assert (tree / "ports/unix/newfile.h").read_text() == "// ours\n"
    assert (tree / "lib/btstack/src/btstack.h").is_file()
    # The user's upstream tree is never modified.
    assert "return 0" in (fake_upstream / "ports/unix/main.c").read_text()
    assert not (fake_upstream / "ports/unix/newfile.h").exists()


def test_second_prepare_is_a_no_op_until_overlay_changes(
    fake_upstream: Path, fake_repo: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    prepare(fake_upstream, tree, Overlay(fake_repo))
    assert prepare(fake_upstream, tree, Overlay(fake_repo)) is False
    (fake_repo / "ports/unix/newfile.h").write_text("// ours, v2\n")
    assert prepare(fake_upstream, tree, Overlay(fake_repo)) is True
    assert (tree / "ports/unix/newfile.h").read_text() == "// ours, v2\n"
    # The patch was applied once, to a fresh copy, not on top of the last result.
    assert (tree / "ports/unix/main.c").read_text().count("return 42") == 1


def test_build_outputs_survive_a_resync(fake_upstream: Path, fake_repo: Path, tmp_path: Path):
    tree = tmp_path / "tree"
    prepare(fake_upstream, tree, Overlay(fake_repo))
    out = tree / "ports/unix/build-btstack/micropython"
    out.parent.mkdir(parents=True)
    out.write_text("binary")
    (fake_repo / "ports/unix/newfile.h").write_text("// changed\n")
    prepare(fake_upstream, tree, Overlay(fake_repo))
    assert out.read_text() == "binary"


def test_patch_that_does_not_apply_is_reported_by_name(
    fake_upstream: Path, fake_repo: Path, tmp_path: Path
) -> None:
    (fake_upstream / "ports/unix/main.c").write_text("int main(void) {\n    return 7;\n}\n")
    tree = tmp_path / "tree"
    with pytest.raises(OverlayError, match=r"0001-unix-return-42\.patch does not apply"):
        prepare(fake_upstream, tree, Overlay(fake_repo))
    # A failed preparation never leaves a tree that looks prepared.
    assert not (tree / ".overlay-stamp").exists()


def test_patches_apply_inside_an_enclosing_git_repository(
    fake_upstream: Path, fake_repo: Path, tmp_path: Path
) -> None:
    # build/tree lives inside this project's own checkout; git apply must not
    # resolve paths against the enclosing repository and silently skip them.
    outer = tmp_path / "outer"
    outer.mkdir()
    git(outer, "init", "-q")
    tree = outer / "build" / "tree"
    prepare(fake_upstream, tree, Overlay(fake_repo))
    assert "return 42" in (tree / "ports/unix/main.c").read_text()


def test_series_naming_a_missing_patch_fails(fake_repo: Path) -> None:
    (fake_repo / "patches/series").write_text("0002-missing.patch\n")
    with pytest.raises(OverlayError, match=r"series:1: 0002-missing\.patch does not exist"):
        Overlay(fake_repo).series()


def test_series_naming_a_missing_overlay_file_fails(fake_repo: Path) -> None:
    (fake_repo / "patches/series").write_text("0001-unix-return-42.patch ports/unix/gone.h\n")
    with pytest.raises(OverlayError, match="overlay file ports/unix/gone.h not found"):
        Overlay(fake_repo).series_entries()


def test_overlay_file_shadowing_an_upstream_file_is_refused(
    fake_upstream: Path, fake_repo: Path, tmp_path: Path
) -> None:
    (fake_repo / "ports/unix/main.c").write_text("// a copy, not a patch\n")
    with pytest.raises(OverlayError, match="ports/unix/main.c exists upstream"):
        prepare(fake_upstream, tmp_path / "tree", Overlay(fake_repo))


def test_make_patch_helper_roundtrip(fake_upstream: Path) -> None:
    assert "+    return 1;" in make_patch(fake_upstream, "ports/unix/main.c", "    return 1;\n")


def test_repository_series_is_consistent() -> None:
    overlay = Overlay(REPO_ROOT)
    entries = overlay.series_entries()
    assert entries, "patches/series lists no patches"
    for entry in entries:
        text = entry.patch.read_text()
        assert text.startswith("From "), f"{entry.patch.name} is not a git format-patch file"
        assert "Subject: [PATCH] " in text
        assert "new file mode" not in text, f"{entry.patch.name} creates a file: use the overlay"
    for rel in overlay.files():
        assert rel.parts[0] in ("extmod", "ports", "lib", "tests", "tools", "docs")


def test_message_only_patch_and_continuation_lines(
    fake_upstream: Path, fake_repo: Path, tmp_path: Path
) -> None:
    """A patch with no diff (the commit of new files) applies as nothing; an
    indented series line adds files to the entry above; local lines are no
    patches."""
    (fake_repo / "tests").mkdir()
    (fake_repo / "tests" / "t.py").write_text("print(1)\n")
    (fake_repo / "tools").mkdir()
    (fake_repo / "tools" / "rig.py").write_text("# rig\n")
    (fake_repo / "patches" / "0002-tests-add-t.patch").write_text(
        "From 0 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] tests: Add t.\n\nBody.\n"
    )
    with (fake_repo / "patches" / "series").open("a") as f:
        f.write("0002-tests-add-t.patch\n    tests/t.py\nlocal tools/rig.py\n")
    overlay = Overlay(fake_repo)
    assert [e.files for e in overlay.series_entries()][1] == (Path("tests/t.py"),)
    assert overlay.local_paths() == [Path("tools/rig.py")]
    assert overlay.unassigned_files() == []
    tree = tmp_path / "tree"
    prepare(fake_upstream, tree, overlay)
    assert (tree / "tests" / "t.py").is_file()
    assert (tree / "tools" / "rig.py").is_file()


def test_a_replaced_file_is_newer_than_the_objects_built_from_it(tmp_path: Path) -> None:
    # Another MICROPY_DIR (or MBEDTLS_DIR) can hold an older file than the
    # objects built from the one it replaces: make must still rebuild.
    old, new, tree = tmp_path / "old", tmp_path / "new", tmp_path / "tree"
    for root, text in ((old, "3.6.7\n"), (new, "3.6.6\n")):
        (root / "lib").mkdir(parents=True)
        (root / "lib" / "version.h").write_text(text)
        (root / "lib" / "same.h").write_text("unchanged\n")
    for path in (new / "lib" / "version.h", new / "lib" / "same.h"):
        os.utime(path, (1_000_000, 1_000_000))  # far older than any build
    _sync(old, tree, [])
    built = tmp_path / "version.o"
    built.write_text("object")
    os.utime(built, (time.time() - 10, time.time() - 10))
    same_before = (tree / "lib" / "same.h").stat().st_mtime
    _sync(new, tree, [])
    assert (tree / "lib" / "version.h").read_text() == "3.6.6\n"
    assert (tree / "lib" / "version.h").stat().st_mtime > built.stat().st_mtime
    # Same content: the old timestamp is taken over, no rebuild.
    assert (tree / "lib" / "same.h").stat().st_mtime == 1_000_000 <= same_before
    # A third sync from the same source finds the same content and takes the
    # source's timestamp: nothing to rebuild, and the sync after that is a no-op.
    _sync(new, tree, [])
    assert (tree / "lib" / "version.h").stat().st_mtime == 1_000_000
