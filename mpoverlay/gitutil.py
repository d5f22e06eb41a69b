"""Small wrappers around the git command line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def run_git(args: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    """Run git and return stdout; raise CalledProcessError with stderr on failure."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, proc.stdout, proc.stderr)
    return proc.stdout


def head_commit(path: Path) -> str | None:
    """The commit checked out at ``path``, or None if it is not a git checkout of its own."""
    if not (path / ".git").exists():
        return None
    try:
        return run_git(["rev-parse", "HEAD"], cwd=path, timeout=30).strip()
    except (subprocess.CalledProcessError, OSError):
        return None


def env_outside_repo(ceiling: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: ours) with git kept from looking at or above ``ceiling``.

    Build trees live inside this repository: without this, git commands run in
    them (git apply, makeversionhdr.py's git describe) see this repository.
    """
    return {**(env if env is not None else os.environ), "GIT_CEILING_DIRECTORIES": str(ceiling)}
