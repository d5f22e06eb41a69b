"""The build tree: upstream located and checked, overlay applied (``build/tree``)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator, Mapping
from pathlib import Path

from . import BUILD_DIR, REPO_ROOT
from .gitutil import head_commit
from .lock import Lock, load_lock
from .overlay import STAMP_NAME, Overlay, _sync, prepare
from .upstream import CACHE_DIR, check_tree, locate, report

TREE_DIR = BUILD_DIR / "tree"
# Pinned upstream with no overlay at all, to measure what the overlay costs.
UPSTREAM_TREE_DIR = BUILD_DIR / "tree-upstream"
NO_OVERLAY = Overlay(BUILD_DIR / "no-overlay")  # a directory that never exists


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


def _is_empty(path: Path) -> bool:
    return not path.is_dir() or not any(path.iterdir())


def substituted_submodules(upstream: Path, lock: Lock) -> list[str]:
    """Pinned submodules that may be substituted and are empty upstream.

    Left out of the sync (never copied nor deleted), so that a substitute copied
    into the build tree survives, whichever build prepared the tree last.
    """
    return [p.path for p in lock.submodules if p.substitute and _is_empty(upstream / p.path)]


def submodule_state(upstream: Path, lock: Lock) -> str:
    """The commits checked out in ``upstream`` for every pinned submodule."""
    return "\n".join(f"{p.path} {head_commit(upstream / p.path)}" for p in lock.submodules)


def _invalidate_if_submodules_changed(upstream: Path, dest: Path, lock: Lock) -> None:
    # The overlay stamp only knows upstream's own commit: a submodule checked
    # out (or moved) since the last sync must force a re-sync too.
    state_file = dest.parent / f"{dest.name}.submodules"
    state = submodule_state(upstream, lock)
    if not state_file.is_file() or state_file.read_text() != state:
        (dest / STAMP_NAME).unlink(missing_ok=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(state)


def sync_tree(
    upstream: Path,
    dest: Path,
    overlay: Overlay,
    lock: Lock,
    substitutes: Mapping[str, Path] | None = None,
) -> bool:
    """Bring ``dest`` to upstream + overlay (+ substitutes for empty submodules)."""
    skip = [*unpinned_submodules(upstream, lock), *substituted_submodules(upstream, lock)]
    with tree_lock():
        _invalidate_if_submodules_changed(upstream, dest, lock)
        changed = prepare(upstream, dest, overlay, skip)
        for path, src in (substitutes or {}).items():
            if path in skip:
                print(f"tree: {path} <- {src} (substitute; upstream's copy is empty)")
                _sync(src, dest / path, [])
    return changed


def available_upstream(micropy_dir: str | None) -> Path | None:
    """An upstream tree that needs no network: MICROPY_DIR, or an earlier fetch."""
    if micropy_dir:
        return Path(micropy_dir).expanduser().resolve()
    if CACHE_DIR.is_dir() and any(CACHE_DIR.iterdir()):
        return CACHE_DIR
    return None


def prepared_tree(
    micropy_dir: str | None,
    allow_fetch: bool,
    builds: tuple[str, ...] = ("unix",),
    substitutes: Mapping[str, Path] | None = None,
    upstream_only: bool = False,
) -> Path:
    """Locate upstream (fetching if allowed), then bring ``build/tree`` up to date.

    With ``upstream_only``, ``build/tree-upstream`` instead: pinned upstream
    with no overlay (for size comparisons).
    """
    lock = load_lock(REPO_ROOT / "upstream.lock")
    upstream = locate(lock, builds, micropy_dir, allow_fetch, substitutes)
    return prepared_from(upstream, lock, substitutes, upstream_only)


def prepared_from(
    upstream: Path,
    lock: Lock,
    substitutes: Mapping[str, Path] | None = None,
    upstream_only: bool = False,
) -> Path:
    """``prepared_tree`` for an upstream tree already located and checked."""
    if upstream_only:
        dest, overlay = UPSTREAM_TREE_DIR, NO_OVERLAY
    else:
        dest, overlay = TREE_DIR, Overlay(REPO_ROOT)
    changed = sync_tree(upstream, dest, overlay, lock, substitutes)
    print(f"tree: {dest} {'prepared' if changed else 'up to date'}")
    return dest


__all__ = [
    "TREE_DIR",
    "UPSTREAM_TREE_DIR",
    "available_upstream",
    "check_tree",
    "prepared_from",
    "prepared_tree",
    "report",
]
