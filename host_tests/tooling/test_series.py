"""The patch series exporter (mpoverlay.series), on a tiny fake upstream.

The fake upstream has a unix "build" (a Makefile that succeeds only once a
patch made main.c return 42) and a stand-in verifygitlog.py, so each step's
apply/build/log check is observable without MicroPython.  Upstream's own
rules for commit messages are checked on our real patches by
test_repository_patches_follow_upstream_commit_rules.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from tooling_fakes import git

from mpoverlay import REPO_ROOT
from mpoverlay.lock import load_lock
from mpoverlay.overlay import Overlay, OverlayError
from mpoverlay.series import (
    SeriesError,
    export,
    format_report,
    patch_paths,
    patch_subject,
    patch_target,
)

LOCK = load_lock(REPO_ROOT / "upstream.lock")

# Stand-in for upstream's tools/verifygitlog.py: fails a subject without a
# final full stop, as upstream's does.
FAKE_VERIFYGITLOG = """\
import subprocess, sys
args = [a for a in sys.argv[1:] if a != "-n"]
subject = subprocess.run(["git", "log", "--format=%s", *args], capture_output=True,
                         text=True, check=True).stdout.strip()
if not subject.endswith("."):
    print("commit: subject must end with a full stop: " + subject)
    sys.exit(1)
print("ok")
"""


# Stand-in for upstream's tools/codeformat.py -c: indents with 4 spaces.
FAKE_CODEFORMAT = """\
import re, sys
for name in [a for a in sys.argv[1:] if not a.startswith("-")]:
    with open(name) as f:
        text = f.read()
    with open(name, "w") as f:
        f.write(re.sub(r"(?m)^ +", "    ", text))
"""


@pytest.fixture(autouse=True)
def fake_format_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake codeformat.py needs no uncrustify."""
    monkeypatch.setattr("mpoverlay.series.FORMAT_TOOLS", ())


def fake_upstream(root: Path) -> Path:
    up = root / "upstream"
    (up / "ports" / "unix").mkdir(parents=True)
    (up / "ports" / "unix" / "main.c").write_text("int main(void) {\n    return 0;\n}\n")
    (up / "ports" / "unix" / "Makefile").write_text("all:\n\tgrep -q 42 main.c\n")
    (up / "lib" / "btstack" / "src").mkdir(parents=True)
    (up / "lib" / "btstack" / "src" / "sm.c").write_text("int sm;\n")
    (up / "tools").mkdir()
    (up / "tools" / "verifygitlog.py").write_text(FAKE_VERIFYGITLOG)
    (up / "tools" / "codeformat.py").write_text(FAKE_CODEFORMAT)
    return up


def mail_patch(upstream: Path, rel: str, new_text: str, subject: str) -> str:
    """A format-patch file changing upstream's ``rel`` to ``new_text``."""
    work = upstream.parent / "mkpatch"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    (work / rel).parent.mkdir(parents=True)
    (work / rel).write_text((upstream / rel).read_text())
    git(work, "init", "-q")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "base")
    (work / rel).write_text(new_text)
    message = f"{subject}\n\nWhy it is needed.\n\nSigned-off-by: Old <old@example.invalid>\n"
    git(work, "commit", "-q", "-a", "-m", message)
    return git(work, "format-patch", "-1", "--zero-commit", "--stdout")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    up = fake_upstream(tmp_path)
    repo = tmp_path / "repo"
    (repo / "patches").mkdir(parents=True)
    (repo / "ports" / "unix" / "variants" / "btstack").mkdir(parents=True)
    (repo / "ports" / "unix" / "variants" / "btstack" / "mpconfigvariant.mk").write_text("#\n")
    (repo / "ports" / "unix" / "unix_new.h").write_text("// ours\n")
    patches = {
        "0001-unix-return-42.patch": mail_patch(
            up, "ports/unix/main.c", "int main(void) {\n    return 42;\n}\n", "unix: Return 42."
        ),
        "0002-lib-btstack-fix.patch": mail_patch(
            up, "lib/btstack/src/sm.c", "int sm = 1;\n", "lib/btstack: Fix sm."
        ),
    }
    for name, text in patches.items():
        (repo / "patches" / name).write_text(text)
    (repo / "patches" / "series").write_text(
        "0001-unix-return-42.patch ports/unix/unix_new.h\n"
        "0002-lib-btstack-fix.patch\n"
        "local ports/unix/variants/btstack\n"
    )
    return up, repo


def test_subject_paths_and_target_are_read_from_the_patch(setup: tuple[Path, Path]) -> None:
    _, repo = setup
    text = (repo / "patches" / "0002-lib-btstack-fix.patch").read_text()
    assert patch_subject(text) == "lib/btstack: Fix sm."
    assert patch_paths(text) == ["lib/btstack/src/sm.c"]
    assert patch_target(patch_paths(text), ["lib/btstack"]) == "lib/btstack"
    assert patch_target(["py/obj.c"], ["lib/btstack"]) == "micropython"
    with pytest.raises(SeriesError, match="one project only"):
        patch_target(["py/obj.c", "lib/btstack/src/sm.c"], ["lib/btstack"])


def test_folded_subject_is_unfolded() -> None:
    text = "From 0 Mon\nSubject: [PATCH] extmod/modbluetooth: Add a\n very long subject.\n\nBody\n"
    assert patch_subject(text) == "extmod/modbluetooth: Add a very long subject."


def test_every_step_is_committed_built_and_checked(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    up, repo = setup
    report = export(
        up, tmp_path / "work", LOCK, "New Author <new@example.invalid>", True, Overlay(repo)
    )
    tree = tmp_path / "work" / "tree"
    # main.c returns 0 before patch 0001
    assert report.base_build == "FAILED (btstack, nimble, btstack-nostore)"
    first, second = report.steps
    assert (first.status, first.build, first.log_issues) == ("applied", "ok", [])
    assert (second.status, second.target) == ("applied", "lib/btstack")
    assert report.ok
    # The new file is in the patch's commit; the local variant is never committed.
    files = git(tree, "show", "--name-only", "--format=", first.commit).split()
    assert files == ["ports/unix/main.c", "ports/unix/unix_new.h"]
    assert (tree / "ports/unix/variants/btstack/mpconfigvariant.mk").is_file()
    assert "variants" not in git(tree, "log", "--name-only", "--format=")
    # Authorship and sign-off are the submitter's.
    assert git(tree, "log", "-1", "--format=%an <%ae>", first.commit).strip() == (
        "New Author <new@example.invalid>"
    )
    body = git(tree, "log", "-1", "--format=%B", first.commit)
    assert body.rstrip().endswith("Signed-off-by: New Author <new@example.invalid>")
    assert "old@example.invalid" not in body
    # MicroPython's patches and the submodule's go to separate directories,
    # the submodule's relative to the submodule.
    out = tmp_path / "work" / "patches"
    [mp_patch] = (out / "micropython").iterdir()
    assert "ports/unix/unix_new.h" in mp_patch.read_text()
    [bt_patch] = (out / "lib-btstack").iterdir()
    assert "diff --git a/src/sm.c b/src/sm.c" in bt_patch.read_text()


def test_patch_that_no_longer_applies_is_reported_and_later_ones_still_run(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    up, repo = setup
    # "master" moved on: main.c changed where patch 0001 edits it.
    (up / "ports" / "unix" / "main.c").write_text("int main(void) {\n    return 1;\n}\n")
    report = export(up, tmp_path / "work", LOCK, None, False, Overlay(repo))
    first, second = report.steps
    assert first.status == "needs rebase"
    assert "patch does not apply" in first.detail
    assert second.status == "applied"
    assert not report.ok
    assert "needs a rebase: 0001-unix-return-42.patch" in format_report(report)


def test_patch_already_in_upstream_is_named_so(setup: tuple[Path, Path], tmp_path: Path) -> None:
    up, repo = setup
    (up / "lib" / "btstack" / "src" / "sm.c").write_text("int sm = 1;\n")
    report = export(up, tmp_path / "work", LOCK, None, False, Overlay(repo))
    assert [s.status for s in report.steps] == ["applied", "already upstream"]


def test_bad_commit_message_is_reported(setup: tuple[Path, Path], tmp_path: Path) -> None:
    up, repo = setup
    patch = repo / "patches" / "0001-unix-return-42.patch"
    patch.write_text(patch.read_text().replace("unix: Return 42.", "unix: Return 42"))
    report = export(up, tmp_path / "work", LOCK, None, False, Overlay(repo))
    assert report.steps[0].log_issues
    assert not report.ok


def test_message_only_patch_commits_its_new_files(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    up, repo = setup
    (repo / "lib" / "btstack" / "test").mkdir(parents=True)
    (repo / "lib" / "btstack" / "test" / "sm_test.c").write_text("int t;\n")
    (repo / "patches" / "0003-lib-btstack-add-a-test.patch").write_text(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: Old <old@example.invalid>\n"
        "Date: Tue, 1 Dec 2026 08:00:00 +0000\n"
        "Subject: [PATCH] lib/btstack: Add a test.\n\n"
        "The test shows the fix.\n\n"
        "Signed-off-by: Old <old@example.invalid>\n"
    )
    with (repo / "patches" / "series").open("a") as f:
        f.write("0003-lib-btstack-add-a-test.patch\n    lib/btstack/test/sm_test.c\n")
    report = export(up, tmp_path / "work", LOCK, None, False, Overlay(repo))
    third = report.steps[2]
    assert (third.status, third.target) == ("applied", "lib/btstack")
    tree = tmp_path / "work" / "tree"
    assert git(tree, "show", "--name-only", "--format=%s", third.commit).split("\n")[:3] == [
        "lib/btstack: Add a test.",
        "",
        "lib/btstack/test/sm_test.c",
    ]
    [_, new] = sorted((tmp_path / "work" / "patches" / "lib-btstack").iterdir())
    assert "diff --git a/test/sm_test.c b/test/sm_test.c" in new.read_text()


def test_badly_formatted_c_file_is_reported(setup: tuple[Path, Path], tmp_path: Path) -> None:
    up, repo = setup
    (repo / "ports" / "unix" / "unix_new.h").write_text("#if X\n  int x;\n#endif\n")
    report = export(up, tmp_path / "work", LOCK, None, False, Overlay(repo))
    assert report.steps[0].format_issues == ["ports/unix/unix_new.h"]
    assert not report.ok
    # The check leaves the committed file as it was.
    assert "  int x;" in (tmp_path / "work" / "tree" / "ports/unix/unix_new.h").read_text()


def test_without_uncrustify_the_c_check_says_not_run_and_ruff_still_runs(
    setup: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    up, repo = setup
    monkeypatch.setattr("mpoverlay.series.FORMAT_TOOLS", ("no-such-formatter-here",))
    (repo / "tools").mkdir()
    (repo / "tools" / "new_tool.py").write_text("x=1\n")  # ruff format wants "x = 1"
    (repo / "patches" / "series").write_text(
        "0001-unix-return-42.patch ports/unix/unix_new.h tools/new_tool.py\n"
        "0002-lib-btstack-fix.patch\n"
        "local ports/unix/variants/btstack\n"
    )
    report = export(up, tmp_path / "work", LOCK, None, False, Overlay(repo))
    step = report.steps[0]
    assert step.format_not_run == ["2 C file(s)"]
    assert step.format_issues == ["tools/new_tool.py"]
    row = next(line for line in format_report(report).splitlines() if "0001-" in line)
    codeformat = row.split(" | ")[5]
    assert codeformat == "changes tools/new_tool.py; not run for 2 C file(s)"


def test_overlay_file_that_belongs_nowhere_stops_the_export(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    up, repo = setup
    (repo / "ports" / "unix" / "stray.c").write_text("// ?\n")
    with pytest.raises(SeriesError, match="ports/unix/stray.c"):
        export(up, tmp_path / "work", LOCK, None, False, Overlay(repo))


def test_local_line_naming_a_missing_path_fails(setup: tuple[Path, Path]) -> None:
    _, repo = setup
    (repo / "patches" / "series").write_text("local tools/nothing\n")
    with pytest.raises(OverlayError, match="tools/nothing"):
        Overlay(repo).local_paths()


def test_every_overlay_file_of_this_repository_has_a_place() -> None:
    assert Overlay(REPO_ROOT).unassigned_files() == []


# Upstream's rules (tools/verifygitlog.py, CODECONVENTIONS.md), so that CI
# catches a bad message without an upstream tree.
SUBJECT_RE = re.compile(r"^[^!]+: [A-Z]+.+ .+\.$")


def test_repository_patches_follow_upstream_commit_rules() -> None:
    for entry in Overlay(REPO_ROOT).series_entries():
        text = entry.patch.read_text()
        subject = patch_subject(text)
        assert SUBJECT_RE.match(subject), (entry.patch.name, subject)
        assert len(subject) <= 72, (entry.patch.name, subject)
        prefix = subject.split(": ")[0]
        assert not prefix.startswith(("ports/", ".", "/")), (entry.patch.name, prefix)
        assert not prefix.endswith((".c", ".h", ".cpp", ".js", ".rst", ".md", "/")), prefix
        header, _, rest = text.partition("\n\n")
        assert "noreply" not in header, f"{entry.patch.name}: unwanted author address"
        body = rest.split("\n---\n", 1)[0].rstrip().splitlines()
        assert body[-1].startswith("Signed-off-by: ") and "@" in body[-1], entry.patch.name
        long = [ln for ln in body if len(ln) >= 76 and "://" not in ln]
        assert not long, (entry.patch.name, long)
