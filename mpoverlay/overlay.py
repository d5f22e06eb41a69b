"""Prepare a build tree: a copy of upstream with our patches and new files applied.

The user's upstream tree is only ever read.  The build tree is a separate
copy (``build/tree``), refreshed incrementally so that make only rebuilds
what changed.  Layout of the overlay in this repository:

- new files live at their upstream paths under ``OVERLAY_DIRS``;
- changes to upstream files are patches in ``patches/``, applied in the
  order ``patches/series`` lists them.  A patch that does not apply stops
  everything with the patch's name and git's complaint.
"""

from __future__ import annotations

import filecmp
import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .gitutil import env_outside_repo, head_commit

OVERLAY_DIRS = ("extmod", "ports", "lib", "tests", "tools", "docs")
STAMP_NAME = ".overlay-stamp"
# A patches/series line "local PATH..." names overlay files kept out of upstream.
LOCAL_KEYWORD = "local"
_SKIP_NAMES = {"__pycache__", ".pytest_cache", ".ruff_cache"}


class OverlayError(RuntimeError):
    """The overlay cannot be applied (bad series, patch rejected, file clash)."""


@dataclass(frozen=True)
class SeriesEntry:
    """One upstream commit: a patch plus the new files that go with it."""

    patch: Path
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Overlay:
    """Our changes to upstream, as found in a repository checkout."""

    root: Path

    @property
    def patches_dir(self) -> Path:
        return self.root / "patches"

    def files(self) -> list[Path]:
        """New files, relative to the repository root (= their upstream path)."""
        found = []
        for top in OVERLAY_DIRS:
            base = self.root / top
            if not base.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_NAMES)
                for name in sorted(filenames):
                    if not name.endswith((".pyc", ".so")):
                        found.append((Path(dirpath) / name).relative_to(self.root))
        return found

    def series(self) -> list[Path]:
        """Patches in application order, from ``patches/series``."""
        series_file = self.patches_dir / "series"
        if not series_file.is_file():
            return []
        return [entry.patch for entry in self.series_entries()]

    def _series_lines(self) -> list[tuple[int, list[str]]]:
        series_file = self.patches_dir / "series"
        if not series_file.is_file():
            return []
        lines: list[tuple[int, list[str]]] = []
        for lineno, line in enumerate(series_file.read_text().splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if line[0].isspace():
                # An indented line continues the entry above with more files.
                if not lines:
                    raise OverlayError(f"patches/series:{lineno}: continues no entry")
                lines[-1][1].extend(words)
            else:
                lines.append((lineno, words))
        return lines

    def local_paths(self) -> list[Path]:
        """Overlay files and directories (``local`` lines of ``patches/series``)
        that belong to this project's test rig and are never sent upstream."""
        found = []
        for lineno, words in self._series_lines():
            if words[0] != LOCAL_KEYWORD:
                continue
            for w in words[1:]:
                if not (self.root / w).exists():
                    raise OverlayError(f"patches/series:{lineno}: local path {w} not found")
                found.append(Path(w))
        return found

    def local_files(self) -> list[Path]:
        """The overlay files at or under a ``local`` path."""
        local = self.local_paths()
        return [f for f in self.files() if any(f == p or p in f.parents for p in local)]

    def unassigned_files(self) -> list[Path]:
        """Overlay files that neither belong to a patch's commit nor are local."""
        placed = {f for entry in self.series_entries() for f in entry.files}
        placed.update(self.local_files())
        return [f for f in self.files() if f not in placed]

    def series_entries(self) -> list[SeriesEntry]:
        """``patches/series`` in order: each patch with the new files of its commit."""
        entries = []
        for lineno, words in self._series_lines():
            if words[0] == LOCAL_KEYWORD:
                continue
            patch = self.patches_dir / words[0]
            if not patch.is_file():
                raise OverlayError(f"patches/series:{lineno}: {words[0]} does not exist")
            files = tuple(Path(w) for w in words[1:])
            for f in files:
                if not (self.root / f).is_file():
                    raise OverlayError(f"patches/series:{lineno}: overlay file {f} not found")
            entries.append(SeriesEntry(patch, files))
        return entries

    def digest(self) -> str:
        """Hash of everything in the overlay, to know when a build tree is stale."""
        h = hashlib.sha256()
        for path in [*self.series(), *self.files()]:
            rel = path.relative_to(self.root) if path.is_absolute() else path
            h.update(str(rel).encode() + b"\0")
            h.update((self.root / rel).read_bytes() + b"\0")
        return h.hexdigest()


def has_diff(patch_text: str) -> bool:
    """Whether a patch changes any file (else it is a commit message only)."""
    return re.search(r"^diff --git ", patch_text, re.M) is not None


def apply_patch(tree: Path, patch: Path) -> None:
    """Apply one patch to ``tree`` (which need not be a git repository).

    A patch with no diff at all carries only the message of a commit that
    adds new overlay files (e.g. a test for a submodule's project).
    """
    if not has_diff(patch.read_text()):
        return
    cmd = ["git", "apply", "--whitespace=nowarn", "-p1", str(patch)]
    # Inside an enclosing git work tree (e.g. build/tree in this repository),
    # git apply would take paths relative to that repository's top and
    # silently skip the patch: stop git from looking above the tree.
    env = env_outside_repo(tree.resolve().parent)
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise OverlayError(f"patch {patch.name} does not apply to {tree}:\n{proc.stderr.strip()}")


def copy_files(overlay: Overlay, tree: Path, upstream: Path) -> None:
    for rel in overlay.files():
        if (upstream / rel).exists():
            raise OverlayError(
                f"{rel} exists upstream: change it with a patch in patches/, not a copy"
            )
        dest = tree / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        # copy2 keeps the mtime, so make rebuilds only files that really changed.
        shutil.copy2(overlay.root / rel, dest)


def _excluded(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, p) for p in patterns)


def _sync(upstream: Path, tree: Path, exclude: list[str]) -> None:
    """Make ``tree`` a copy of ``upstream`` (like ``rsync -a --delete``).

    Files whose size and mtime already match are left alone, so make does not
    rebuild them; paths matching ``exclude`` (e.g. build outputs) are neither
    copied nor deleted.  A file whose content changes gets the current time,
    not the source's: the source may be older than the objects built from the
    file it replaces (another MICROPY_DIR, another MBEDTLS_DIR), and make
    would rebuild nothing.
    """
    tree.mkdir(parents=True, exist_ok=True)
    wanted: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(upstream):
        rel_dir = os.path.relpath(dirpath, upstream)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [
            d for d in dirnames if d != ".git" and not _excluded(rel_dir + d + "/", exclude)
        ]
        for name in filenames:
            rel = rel_dir + name
            if name == ".git" or _excluded(rel, exclude):
                continue
            wanted.add(rel)
            src, dst = Path(dirpath) / name, tree / rel
            if src.is_symlink():
                if dst.is_symlink() or dst.exists():
                    dst.unlink()
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(os.readlink(src))
                continue
            st = src.stat()
            replaced = False
            try:
                dt = dst.lstat()
                if dt.st_size == st.st_size and int(dt.st_mtime) == int(st.st_mtime):
                    continue
                if not dst.is_symlink() and filecmp.cmp(src, dst, shallow=False):
                    shutil.copystat(src, dst)  # same content: no rebuild
                    continue
                replaced = True
            except FileNotFoundError:
                dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.is_symlink():
                dst.unlink()
            shutil.copy2(src, dst)
            if replaced:
                os.utime(dst)
    for dirpath, dirnames, filenames in os.walk(tree, topdown=True):
        rel_dir = os.path.relpath(dirpath, tree)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not _excluded(rel_dir + d + "/", exclude)]
        for name in filenames:
            rel = rel_dir + name
            if rel not in wanted and rel != STAMP_NAME and not _excluded(rel, exclude):
                (Path(dirpath) / name).unlink()


# Build outputs inside the tree that a re-sync must neither copy nor delete.
BUILD_OUTPUT_EXCLUDES = ["ports/*/build-*/", "ports/*/build/", "mpy-cross/build/"]


def prepare(upstream: Path, tree: Path, overlay: Overlay, skip: list[str] = ()) -> bool:
    """Bring ``tree`` to upstream + overlay.  Returns False if it was already up to date.

    ``skip`` lists upstream paths (e.g. unused submodules) left out of the copy.
    """
    stamp = "\n".join([str(upstream), str(head_commit(upstream)), overlay.digest(), *sorted(skip)])
    stamp_file = tree / STAMP_NAME
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return False
    if stamp_file.exists():
        stamp_file.unlink()  # a half-prepared tree must never look prepared
    _sync(upstream, tree, [*BUILD_OUTPUT_EXCLUDES, *(f"{s}/" for s in skip)])
    copy_files(overlay, tree, upstream)
    for patch in overlay.series():
        apply_patch(tree, patch)
    stamp_file.write_text(stamp)
    return True
