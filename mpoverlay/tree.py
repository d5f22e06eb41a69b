"""The build tree: upstream located and checked, overlay applied (``build/tree``)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from . import BUILD_DIR, REPO_ROOT
from .lock import Lock, load_lock
from .overlay import Overlay, prepare
from .upstream import CACHE_DIR, check_tree, locate, report

TREE_DIR = BUILD_DIR / "tree"


@contextlib.contextmanager
def tree_lock() -> Iterator[None]:
    """Serialise preparing and building: several rigs may share ``build/tree``."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".tree.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def unpinned_submodules(upstream: Path, lock: Lock) -> list[str]:
    """Submodule paths of ``upstream`` that the lock does not pin (never needed)."""
    gitmodules = upstream / ".gitmodules"
    if not gitmodules.is_file():
        return []
    pinned = {p.path for p in lock.submodules}
    paths = [
        line.split("=", 1)[1].strip()
        for line in gitmodules.read_text().splitlines()
        if line.strip().startswith("path =")
    ]
    return [p for p in paths if p not in pinned]


def available_upstream(micropy_dir: str | None) -> Path | None:
    """An upstream tree that needs no network: MICROPY_DIR, or an earlier fetch."""
    if micropy_dir:
        return Path(micropy_dir).expanduser().resolve()
    if CACHE_DIR.is_dir() and any(CACHE_DIR.iterdir()):
        return CACHE_DIR
    return None


def prepared_tree(
    micropy_dir: str | None, allow_fetch: bool, builds: tuple[str, ...] = ("unix",)
) -> Path:
    """Locate upstream (fetching if allowed), then bring ``build/tree`` up to date."""
    lock = load_lock(REPO_ROOT / "upstream.lock")
    upstream = locate(lock, builds, micropy_dir, allow_fetch)
    with tree_lock():
        changed = prepare(
            upstream, TREE_DIR, Overlay(REPO_ROOT), unpinned_submodules(upstream, lock)
        )
    print(f"tree: {TREE_DIR} {'prepared' if changed else 'up to date'}")
    return TREE_DIR


__all__ = ["TREE_DIR", "available_upstream", "check_tree", "prepared_tree", "report"]
