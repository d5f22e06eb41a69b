"""Find the upstream MicroPython tree to build on, and check it against the lock.

Three sources, in order: ``MICROPY_DIR`` given by the user (used read-only),
a cache under ``build/upstream`` from an earlier fetch, or a fresh fetch of
the canonical public repositories at the pinned commits (needs network).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import BUILD_DIR
from .gitutil import head_commit, run_git
from .lock import Lock, Pin

CACHE_DIR = BUILD_DIR / "upstream" / "micropython"


class UpstreamError(RuntimeError):
    """No usable upstream tree."""


@dataclass(frozen=True)
class Finding:
    """One difference between a tree and the lock."""

    path: str
    expected: str
    actual: str | None  # None: not a git checkout, so the commit cannot be checked
    substitute: str | None = None  # what is used instead of the pinned commit

    def __str__(self) -> str:
        if self.substitute is not None:
            return (
                f"{self.path}: SUBSTITUTED by {self.substitute}"
                f" (lock pins {self.expected[:12]}, not in this tree)"
            )
        if self.actual is None:
            return f"{self.path}: not a git checkout, cannot check it is at {self.expected[:12]}"
        return f"{self.path}: at {self.actual[:12]}, lock pins {self.expected[:12]}"


def _is_populated(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


_MBEDTLS_VERSION_RE = re.compile(r'#define\s+MBEDTLS_VERSION_STRING\s+"([^"]+)"')


def mbedtls_version(src: Path) -> str | None:
    """The version of an mbedtls source tree (from include/mbedtls/build_info.h)."""
    for header in ("build_info.h", "version.h"):
        path = src / "include" / "mbedtls" / header
        if path.is_file():
            m = _MBEDTLS_VERSION_RE.search(path.read_text(errors="replace"))
            if m:
                return m.group(1)
    return None


def _matches(version: str, wanted: str) -> bool:
    return version == wanted or version.startswith(wanted + ".")


def substitute_for(pin: Pin, upstream_dir: Path, given: Path | None) -> Path | None:
    """Decide whether ``pin`` is replaced by the user's ``given`` source tree.

    Returns None when the upstream tree has the submodule (its own copy wins),
    ``given`` when the submodule is empty and ``given`` is an acceptable
    substitute (the lock's ``substitute`` version); raises otherwise.
    """
    if _is_populated(upstream_dir):
        return None
    if pin.substitute is None:
        raise UpstreamError(f"{pin.path} is empty and upstream.lock allows no substitute for it")
    if given is None:
        raise UpstreamError(
            f"{upstream_dir} is empty: run 'git submodule update --init {pin.path}' in that"
            f" tree, or pass a {pin.name} {pin.substitute}.x source tree"
            f" ({pin.name.upper()}_DIR=...)"
        )
    if pin.name != "mbedtls":
        raise UpstreamError(f"{pin.path}: cannot check the version of a substitute {given}")
    version = mbedtls_version(given)
    if version is None or not _matches(version, pin.substitute):
        raise UpstreamError(
            f"{given} is not an mbedtls {pin.substitute}.x source tree (found {version})"
        )
    return given


def describe_substitute(pin: Pin, src: Path) -> str:
    version = mbedtls_version(src) if pin.name == "mbedtls" else None
    return f"{src} ({pin.name} {version or 'unknown version'})"


def check_tree(
    tree: Path,
    lock: Lock,
    builds: tuple[str, ...],
    substitutes: Mapping[str, Path] | None = None,
) -> list[Finding]:
    """Compare ``tree`` with the lock; raise if it is unusable, return the differences.

    ``substitutes`` maps submodule paths to source trees the user offers in
    place of an empty submodule (e.g. lib/mbedtls); each use is a finding.
    """
    substitutes = substitutes or {}
    if not (tree / "py" / "mpconfig.h").is_file() or not (tree / "ports" / "unix").is_dir():
        raise UpstreamError(f"{tree} is not a MicroPython source tree (no py/mpconfig.h)")
    findings = []
    pins = [lock.micropython]
    for build in builds:
        pins.extend(p for p in lock.for_build(build) if p not in pins)
    for pin in pins:
        path = tree / pin.path
        src = substitute_for(pin, path, substitutes.get(pin.path)) if pin.substitute else None
        if src is not None:
            findings.append(Finding(pin.path, pin.commit, None, describe_substitute(pin, src)))
            continue
        if pin.path != "." and not _is_populated(path):
            raise UpstreamError(
                f"{tree}: submodule {pin.path} is empty; run "
                f"'git submodule update --init {pin.path}' in that tree"
            )
        actual = head_commit(path)
        if actual != pin.commit:
            findings.append(Finding(pin.path, pin.commit, actual))
    return findings


def report(findings: list[Finding], tree: Path) -> None:
    if not findings:
        print(f"upstream: {tree} matches upstream.lock")
        return
    print(f"upstream: WARNING: {tree} differs from upstream.lock:", file=sys.stderr)
    for f in findings:
        print(f"  {f}", file=sys.stderr)


def _clone(pin: Pin, dest: Path) -> None:
    print(f"upstream: fetching {pin.url} at {pin.commit[:12]} into {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    run_git(["clone", "--filter=blob:none", "--no-checkout", pin.url, str(dest)], timeout=3600)
    run_git(["checkout", "--quiet", pin.commit], cwd=dest, timeout=3600)


def fetch(
    lock: Lock, builds: tuple[str, ...], dest: Path = CACHE_DIR, skip: tuple[str, ...] = ()
) -> Path:
    """Clone the pinned commits from the canonical URLs (needs network).

    Submodule paths in ``skip`` (replaced by a substitute) are not fetched.
    """
    try:
        if head_commit(dest) != lock.micropython.commit:
            _clone(lock.micropython, dest)
        for build in builds:
            for pin in lock.for_build(build):
                sub = dest / pin.path
                if pin.path in skip:
                    continue
                if head_commit(sub) != pin.commit:
                    if sub.exists():
                        subprocess.run(["rm", "-rf", str(sub)], check=True)
                    _clone(pin, sub)
    except (subprocess.CalledProcessError, OSError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        raise UpstreamError(f"could not fetch upstream: {detail.strip()}") from e
    return dest


def locate(
    lock: Lock,
    builds: tuple[str, ...],
    micropy_dir: str | None,
    allow_fetch: bool,
    substitutes: Mapping[str, Path] | None = None,
) -> Path:
    """Return the upstream tree to use, checked against the lock (differences reported)."""
    substitutes = substitutes or {}
    if micropy_dir:
        tree = Path(micropy_dir).expanduser().resolve()
    elif allow_fetch:
        tree = fetch(lock, builds, skip=tuple(substitutes))  # no-op for what is cached
    elif _is_populated(CACHE_DIR):
        tree = CACHE_DIR
    else:
        raise UpstreamError("no upstream tree: set MICROPY_DIR=<MicroPython v1.28.0 checkout>")
    report(check_tree(tree, lock, builds, substitutes), tree)
    return tree
