"""Helpers for the tooling tests: a tiny fake upstream tree and overlay repository."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def fake_upstream(tmp_path: Path) -> Path:
    up = tmp_path / "upstream"
    (up / "py").mkdir(parents=True)
    (up / "py" / "mpconfig.h").write_text("// config\n")
    (up / "ports" / "unix").mkdir(parents=True)
    (up / "ports" / "unix" / "main.c").write_text("int main(void) {\n    return 0;\n}\n")
    (up / "lib" / "btstack" / "src").mkdir(parents=True)
    (up / "lib" / "btstack" / "src" / "btstack.h").write_text("// btstack\n")
    return up


def make_patch(upstream: Path, rel: str, new_text: str) -> str:
    """A git-style patch turning upstream's ``rel`` into ``new_text``."""
    old = upstream / rel
    work = upstream.parent / "patchwork"
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    (work / "a" / rel).parent.mkdir(parents=True)
    (work / "b" / rel).parent.mkdir(parents=True)
    (work / "a" / rel).write_text(old.read_text())
    (work / "b" / rel).write_text(new_text)
    proc = subprocess.run(
        ["git", "diff", "--no-index", "--src-prefix=", "--dst-prefix=", f"a/{rel}", f"b/{rel}"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    return proc.stdout


def fake_repo(tmp_path: Path, fake_upstream: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "patches").mkdir(parents=True)
    (repo / "ports" / "unix").mkdir(parents=True)
    (repo / "ports" / "unix" / "newfile.h").write_text("// ours\n")
    patch = make_patch(fake_upstream, "ports/unix/main.c", "int main(void) {\n    return 42;\n}\n")
    (repo / "patches" / "0001-unix-return-42.patch").write_text(patch)
    (repo / "patches" / "series").write_text(
        "# comment\n0001-unix-return-42.patch  ports/unix/newfile.h\n"
    )
    return repo
