"""Build firmware from a prepared tree: the unix port with BTstack or NimBLE over H4.

(The rp2 port is built by ``rp2``, with ``make`` from here.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import BUILD_DIR
from .gitutil import env_outside_repo
from .tree import tree_lock

# Our unix variants (ports/unix/variants/<name>/ in the overlay).
UNIX_VARIANTS = ("btstack", "nimble")


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Built:
    what: str
    path: Path
    seconds: float


def jobs() -> int:
    return os.cpu_count() or 2


def python_arg() -> list[str]:
    """``PYTHON=`` for upstream's makefiles: this interpreter, not ``python3``
    from PATH (a pyenv shim costs 80 ms of CPU per call, and a build makes
    dozens), unless its path has a space, which make would split."""
    return [] if any(c.isspace() for c in sys.executable) else [f"PYTHON={sys.executable}"]


def make(args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> None:
    """Run make in ``cwd`` with its output in ``log``; raise BuildError with its tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    # Keep makeversionhdr.py from describing *this* repository as the
    # firmware's version.
    env = env_outside_repo(BUILD_DIR, env)
    with log.open("w") as f:
        proc = subprocess.run(
            ["make", f"-j{jobs()}", *python_arg(), *args],
            cwd=cwd,
            stdout=f,
            stderr=subprocess.STDOUT,
            env=env,
        )
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise BuildError(f"make {' '.join(args)} failed in {cwd} (log: {log}):\n{tail}")


def unix_binary(variant: str) -> Path:
    """Where the built unix firmware for ``variant`` is published."""
    return BUILD_DIR / f"unix-{variant}" / "micropython"


def build_unix(tree: Path, variant: str) -> Built:
    if variant not in UNIX_VARIANTS:
        raise BuildError(f"unknown unix variant {variant!r}; choose from {UNIX_VARIANTS}")
    t0 = time.monotonic()
    port = tree / "ports" / "unix"
    with tree_lock():
        make([f"VARIANT={variant}"], port, BUILD_DIR / "logs" / f"unix-{variant}.log")
        out = unix_binary(variant)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Replace rather than overwrite: the old binary may be running (ETXTBSY).
        tmp = out.with_suffix(".tmp")
        shutil.copy2(port / f"build-{variant}" / "micropython", tmp)
        os.replace(tmp, out)
    return Built(f"unix {variant}", out, time.monotonic() - t0)
