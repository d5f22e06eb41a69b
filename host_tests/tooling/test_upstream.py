"""Checking an upstream tree against the lock."""

from __future__ import annotations

from pathlib import Path

import pytest
from tooling_fakes import git

from mpoverlay.lock import parse_lock
from mpoverlay.upstream import UpstreamError, check_tree, locate


def lock_for(commit: str, sub_commit: str = "1" * 40):
    return parse_lock(
        f'[micropython]\nurl = "u"\ncommit = "{commit}"\n'
        f'[submodules."lib/btstack"]\nurl = "u"\ncommit = "{sub_commit}"\nbuilds = ["unix"]\n'
    )


def test_tree_without_git_is_reported_as_unverifiable(fake_upstream: Path) -> None:
    findings = check_tree(fake_upstream, lock_for("0" * 40), ("unix",))
    assert [f.path for f in findings] == [".", "lib/btstack"]
    assert all(f.actual is None for f in findings)
    assert "cannot check" in str(findings[0])


def test_git_tree_at_the_pinned_commit_matches(fake_upstream: Path) -> None:
    git(fake_upstream, "init", "-q")
    git(fake_upstream, "add", "-A")
    git(fake_upstream, "commit", "-qm", "upstream")
    head = git(fake_upstream, "rev-parse", "HEAD").strip()
    findings = check_tree(fake_upstream, lock_for(head), ("unix",))
    assert [f.path for f in findings] == ["lib/btstack"]  # the submodule is not a checkout
    other = check_tree(fake_upstream, lock_for("2" * 40), ("unix",))
    assert "lock pins 222222222222" in str(other[0])
    assert head[:12] in str(other[0])


def test_missing_submodule_is_an_error(fake_upstream: Path) -> None:
    for f in (fake_upstream / "lib/btstack/src").iterdir():
        f.unlink()
    (fake_upstream / "lib/btstack/src").rmdir()
    with pytest.raises(UpstreamError, match="submodule lib/btstack is empty"):
        check_tree(fake_upstream, lock_for("0" * 40), ("unix",))


def test_not_a_micropython_tree(tmp_path: Path) -> None:
    with pytest.raises(UpstreamError, match="not a MicroPython source tree"):
        check_tree(tmp_path, lock_for("0" * 40), ("unix",))


def test_locate_without_tree_or_network_says_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mpoverlay.upstream.CACHE_DIR", tmp_path / "nothing")
    with pytest.raises(UpstreamError, match="set MICROPY_DIR"):
        locate(lock_for("0" * 40), ("unix",), None, allow_fetch=False)
