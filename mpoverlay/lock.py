"""Parse ``upstream.lock``: the pinned MicroPython release and its submodules."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


class LockError(ValueError):
    """The lock file is missing a field or has a malformed one."""


@dataclass(frozen=True)
class Pin:
    """One pinned git repository: where it lives in the tree and at which commit."""

    path: str  # "." for MicroPython itself, else e.g. "lib/btstack"
    url: str
    commit: str
    ref: str | None = None
    builds: tuple[str, ...] = ()
    substitute: str | None = None

    @property
    def name(self) -> str:
        return "micropython" if self.path == "." else self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Lock:
    micropython: Pin
    submodules: tuple[Pin, ...] = field(default_factory=tuple)

    def for_build(self, build: str) -> tuple[Pin, ...]:
        """The submodules a build (``unix`` or ``rp2``) needs."""
        return tuple(p for p in self.submodules if build in p.builds)

    def submodule(self, path: str) -> Pin:
        for pin in self.submodules:
            if pin.path == path:
                return pin
        raise KeyError(path)


def _pin(path: str, table: object, where: str) -> Pin:
    if not isinstance(table, dict):
        raise LockError(f"{where}: expected a table")
    for key in ("url", "commit"):
        if not isinstance(table.get(key), str):
            raise LockError(f"{where}: missing or non-string '{key}'")
    commit = table["commit"].lower()
    if not _COMMIT_RE.match(commit):
        raise LockError(f"{where}: commit must be 40 hex digits, got {table['commit']!r}")
    builds = table.get("builds", [])
    if not isinstance(builds, list) or not all(isinstance(b, str) for b in builds):
        raise LockError(f"{where}: 'builds' must be a list of strings")
    return Pin(
        path=path,
        url=table["url"],
        commit=commit,
        ref=table.get("ref"),
        builds=tuple(builds),
        substitute=table.get("substitute"),
    )


def parse_lock(text: str) -> Lock:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise LockError(f"not valid TOML: {e}") from e
    if "micropython" not in data:
        raise LockError("missing [micropython] table")
    mp = _pin(".", data["micropython"], "[micropython]")
    subs = data.get("submodules", {})
    if not isinstance(subs, dict):
        raise LockError("[submodules] must be a table of tables")
    pins = tuple(_pin(path, t, f'[submodules."{path}"]') for path, t in subs.items())
    return Lock(micropython=mp, submodules=pins)


def load_lock(path: Path) -> Lock:
    return parse_lock(path.read_text())
