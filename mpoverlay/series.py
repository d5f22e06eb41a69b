"""Export the overlay as a ``git format-patch`` series and check every step.

``python -m mpoverlay series --base DIR`` replays ``patches/series`` on a
copy of an upstream tree (the pinned v1.28.0, or a master checkout), one
commit per entry (the patch plus the new files that belong to it), and:

- reports a patch that does not apply as *needs rebase* (or as *already
  upstream* when it applies in reverse) and goes on with the next one;
- builds the unix port (BTstack, NimBLE, and BTstack without the bond
  store) after every step, so every commit builds;
- runs upstream's ``tools/codeformat.py -c`` on each commit's C files and
  ``tools/verifygitlog.py`` on each commit message;
- optionally runs the ``multi_bluetooth`` suite on the final tree.

A patch that only touches a submodule (e.g. ``lib/btstack``) is not a
MicroPython commit: it is applied so that later steps build, and exported
separately, relative to that submodule, for its own project.  Files on
``local`` lines of ``patches/series`` (the virtual radio, our unix variants)
stay in this project: they are copied into the work tree untracked, to build
and test with, and never appear in a commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import BUILD_DIR, REPO_ROOT, expectations
from .build import jobs, python_arg
from .gitutil import env_outside_repo
from .lock import Lock
from .multitest import Result, outcome_summary
from .overlay import BUILD_OUTPUT_EXCLUDES, Overlay, SeriesEntry, _sync, has_diff

SERIES_DIR = BUILD_DIR / "series"
BASE_AUTHOR = "Upstream base <base@example.invalid>"
# The unix builds made after every step, as make arguments (the variants are
# local files): BTstack, NimBLE for the patches that change the NimBLE binding
# or shared code, and BTstack without the bond store (the RAM-only device DB,
# as MICROPY_BLUETOOTH_BTSTACK_BOND_STORE=0 builds it on any port).
BUILD_CONFIGS: dict[str, tuple[str, ...]] = {
    "btstack": ("VARIANT=btstack",),
    "nimble": ("VARIANT=nimble",),
    "btstack-nostore": (
        "VARIANT=btstack",
        "MICROPY_BLUETOOTH_BTSTACK_BOND_STORE=0",
        "BUILD=build-btstack-nostore",
    ),
}
# The variant the multi_bluetooth suite runs on the final tree.
BUILD_VARIANT = "btstack"


class SeriesError(RuntimeError):
    pass


@dataclass
class Step:
    """What happened to one entry of ``patches/series``."""

    patch: str
    subject: str
    target: str  # "micropython" or a submodule path such as "lib/btstack"
    status: str = "not run"  # applied / needs rebase / already upstream / not run
    detail: str = ""  # git's complaint for a patch that did not apply
    commit: str = ""
    build: str = "not run"  # ok / FAILED / not run
    build_seconds: float = 0.0
    format_issues: list[str] = field(default_factory=list)
    format_not_run: list[str] = field(default_factory=list)  # e.g. C files, no uncrustify
    log_issues: list[str] = field(default_factory=list)


@dataclass
class Report:
    base: str
    base_build: str = "not run"
    steps: list[Step] = field(default_factory=list)
    checks_skipped: list[str] = field(default_factory=list)
    suite: str = "not run"
    out_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return all(
            s.status == "applied"
            and s.build in ("ok", "not run")
            and not s.format_issues
            and not s.log_issues
            for s in self.steps
        ) and not self.suite.startswith("FAILED")


# -- reading patches ---------------------------------------------------------


def patch_subject(text: str) -> str:
    """The commit subject of a format-patch file (folded header unfolded)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Subject: "):
            subject = line[len("Subject: ") :]
            for cont in lines[i + 1 :]:
                if not cont.startswith((" ", "\t")):
                    break
                subject += " " + cont.strip()
            return subject.removeprefix("[PATCH] ")
    raise SeriesError("no Subject: header")


def patch_paths(text: str) -> list[str]:
    """The files a patch changes, from its ``diff --git a/X b/X`` lines."""
    paths = []
    for line in text.splitlines():
        if line.startswith("diff --git a/"):
            paths.append(line.split(" b/", 1)[1])
    return paths


def patch_target(paths: list[str], submodules: list[str]) -> str:
    """Which project a patch belongs to: "micropython" or one submodule path."""
    targets = set()
    for path in paths:
        owner = next((s for s in submodules if path.startswith(s + "/")), "micropython")
        targets.add(owner)
    if len(targets) != 1:
        raise SeriesError(f"a patch must change one project only, this one changes {targets}")
    return targets.pop()


# -- the work repository -----------------------------------------------------


def _git_env(repo: Path, env: dict[str, str] | None) -> dict[str, str]:
    # Keep git from seeing this project's repository around build/series.
    return env_outside_repo(
        repo.parent,
        {
            **os.environ,
            "GIT_COMMITTER_NAME": "mpoverlay series",
            "GIT_COMMITTER_EMAIL": "series@example.invalid",
            **(env or {}),
        },
    )


def _git_run(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, env=_git_env(repo, env)
    )


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = _git_run(repo, *args, env=env)
    if proc.returncode != 0:
        raise SeriesError(f"git {' '.join(args)} failed in {repo}:\n{proc.stderr.strip()}")
    return proc.stdout


def _author_env(author: str) -> dict[str, str]:
    name, _, email = author.partition("<")
    return {"GIT_AUTHOR_NAME": name.strip(), "GIT_AUTHOR_EMAIL": email.rstrip(">").strip()}


def init_work_repo(base: Path, repo: Path, skip: list[str]) -> None:
    """``repo``: a git repository whose first commit is the upstream tree ``base``."""
    if repo.exists():
        shutil.rmtree(repo)
    _sync(base, repo, [*BUILD_OUTPUT_EXCLUDES, *(f"{s}/" for s in skip)])
    _git(repo, "init", "-q", "-b", "series")
    exclude = repo / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text("build*/\nports/*/build*/\nmpy-cross/build/\n")
    _git(repo, "add", "-A", "-f", ".")
    _git(repo, "commit", "-q", "-m", "Base.", env=_author_env(BASE_AUTHOR))


def copy_local_files(overlay: Overlay, repo: Path) -> list[Path]:
    """Copy the local (never committed) overlay files into ``repo``; list them."""
    copied = overlay.local_files()
    for rel in copied:
        dest = repo / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(overlay.root / rel, dest)
    exclude = repo / ".git" / "info" / "exclude"
    with exclude.open("a") as f:
        f.writelines(f"/{rel}\n" for rel in copied)
    return copied


def _resign(message: str, author: str) -> str:
    """The message with its Signed-off-by trailer(s) replaced by ``author``'s."""
    lines = [ln for ln in message.rstrip("\n").splitlines() if not ln.startswith("Signed-off-by:")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join([*lines, "", f"Signed-off-by: {author}"]) + "\n"


def _commit_message_only(repo: Path, patch: Path) -> subprocess.CompletedProcess:
    """An (empty, for now) commit with a message-only patch's author and
    message: its content is the entry's new files, added next."""
    msg = repo / ".git" / "series-msg"
    with patch.open() as f:
        info = subprocess.run(
            ["git", "mailinfo", str(msg), os.devnull],
            stdin=f,
            cwd=repo,
            capture_output=True,
            text=True,
            env=_git_env(repo, None),
        )
    if info.returncode != 0:
        return info
    headers = dict(line.split(": ", 1) for line in info.stdout.splitlines() if ": " in line)
    message = headers.get("Subject", "") + "\n\n" + msg.read_text()
    author = f"{headers.get('Author', '')} <{headers.get('Email', '')}>"
    env = {**_author_env(author), "GIT_AUTHOR_DATE": headers.get("Date", "")}
    return _git_run(repo, "commit", "-q", "--allow-empty", "-m", message, env=env)


def apply_entry(
    repo: Path, overlay: Overlay, entry: SeriesEntry, step: Step, author: str | None
) -> None:
    """Commit ``entry`` (patch + its new files) in ``repo``; fill in ``step``."""
    if has_diff(entry.patch.read_text()):
        applied = _git_run(repo, "am", str(entry.patch))
    else:
        applied = _commit_message_only(repo, entry.patch)
    if applied.returncode != 0:
        _git_run(repo, "am", "--abort")
        reverse = _git_run(repo, "apply", "--check", "-R", str(entry.patch))
        step.status = "already upstream" if reverse.returncode == 0 else "needs rebase"
        step.detail = (applied.stdout + applied.stderr).strip()
        return
    for rel in entry.files:
        dest = repo / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(overlay.root / rel, dest)
        _git(repo, "add", "-f", str(rel))
    amend = ["commit", "-q", "--amend", "--no-edit"]
    env = None
    if author is not None:
        message = _git(repo, "log", "-1", "--format=%B")
        amend = ["commit", "-q", "--amend", "--reset-author", "-m", _resign(message, author)]
        env = _author_env(author)
    _git(repo, *amend, env=env)
    step.status = "applied"
    step.commit = _git(repo, "rev-parse", "HEAD").strip()


# -- checks --------------------------------------------------------------------


def build(repo: Path, log: Path) -> tuple[str, float]:
    """Build the unix port's variants in ``repo``: "ok", or which ones FAILED."""
    t0 = time.monotonic()
    log.parent.mkdir(parents=True, exist_ok=True)
    failed = []
    with log.open("w") as f:
        for name, make_args in BUILD_CONFIGS.items():
            proc = subprocess.run(
                ["make", f"-j{jobs()}", *python_arg(), *make_args],
                cwd=repo / "ports" / "unix",
                stdout=f,
                stderr=subprocess.STDOUT,
                env=env_outside_repo(repo.parent),
                check=False,
            )
            if proc.returncode != 0:
                failed.append(name)
    verdict = f"FAILED ({', '.join(failed)})" if failed else "ok"
    return verdict, time.monotonic() - t0


def changed_files(repo: Path, commit: str) -> list[str]:
    out = _git(repo, "show", "--name-only", "--diff-filter=AM", "--format=", commit)
    return [line for line in out.splitlines() if line]


def check_format(
    repo: Path, files: list[str], check_c: bool = True
) -> tuple[list[str], list[str]]:
    """Files among ``files`` that upstream's format rules would change: C files
    by ``tools/codeformat.py -c`` (unless ``check_c`` is false: no uncrustify),
    Python files by ``ruff format`` and ``ruff check`` with the tree's own
    configuration, as upstream's CI runs them.  Also what was not checked."""
    issues: list[str] = []
    c_files = [f for f in files if f.endswith((".c", ".h"))]
    not_run = [f"{len(c_files)} C file(s)"] if c_files and not check_c else []
    if c_files and check_c:
        proc = subprocess.run(
            [sys.executable, "tools/codeformat.py", "-c", "-f", *c_files],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return [f"codeformat.py failed: {proc.stderr.strip()[-500:]}"], not_run
        issues += _git(repo, "diff", "--name-only").split()
        _git(repo, "checkout", "--", ".")
    py_files = [f for f in files if f.endswith(".py")]
    if py_files:
        ruff = [sys.executable, "-m", "ruff"]
        fmt = subprocess.run(
            [*ruff, "format", "--check", "--output-format=concise", *py_files],
            cwd=repo,
            capture_output=True,
            text=True,
        )
        # "path:line:col: unformatted: File would be reformatted" (ruff 0.9+;
        # older ruff said "Would reformat: path").
        unformatted = {
            line.split(":")[0] if "unformatted" in line else line.split()[-1]
            for line in fmt.stdout.splitlines()
            if "unformatted" in line or line.startswith("Would reformat")
        }
        if fmt.returncode != 0 and not unformatted:
            unformatted = {f"ruff format failed: {fmt.stderr.strip()[-300:]}"}
        issues += sorted(unformatted)
        lint = subprocess.run(
            [*ruff, "check", "--output-format=concise", *py_files],
            cwd=repo,
            capture_output=True,
            text=True,
        )
        if lint.returncode != 0:
            issues += [ln for ln in lint.stdout.splitlines() if ln.startswith(tuple(py_files))]
    return issues, not_run


def check_message(repo: Path, commit: str) -> list[str]:
    """What upstream's ``verifygitlog.py`` says about one commit (empty: fine)."""
    proc = subprocess.run(
        [sys.executable, "tools/verifygitlog.py", "-n", "-n1", commit],
        cwd=repo,
        capture_output=True,
        text=True,
        env=_git_env(repo, None),
        check=False,
    )
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    return [] if proc.returncode == 0 and lines[-1:] == ["ok"] else lines


# Projects whose commit messages follow MicroPython's rules (verifygitlog.py).
SAME_COMMIT_RULES = ("micropython", "lib/micropython-lib")
# What upstream's codeformat.py -c runs.
FORMAT_TOOLS = ("uncrustify",)


def missing_tools() -> list[str]:
    """Tools the format check needs that are not installed."""
    return [t for t in FORMAT_TOOLS if shutil.which(t) is None]


# -- export ------------------------------------------------------------------


def format_patches(repo: Path, steps: list[Step], out_dir: Path) -> None:
    """Write each applied step as a patch: MicroPython's in ``micropython/``,
    a submodule's relative to it in ``<submodule with / as ->/``."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    numbers: dict[str, int] = {}
    for step in steps:
        if step.status != "applied":
            continue
        name = "micropython" if step.target == "micropython" else step.target.replace("/", "-")
        numbers[name] = numbers.get(name, 0) + 1
        dest = out_dir / name
        dest.mkdir(parents=True, exist_ok=True)
        args = ["format-patch", "-1", "--zero-commit", f"--start-number={numbers[name]}"]
        if step.target != "micropython":
            args.append(f"--relative={step.target}")
        _git(repo, *args, "-o", str(dest), step.commit)


def export(
    base: Path,
    work: Path,
    lock: Lock,
    author: str | None = None,
    build_each: bool = True,
    overlay: Overlay | None = None,
) -> Report:
    """Replay the series on ``base`` in ``work``/tree; see the module docstring."""
    overlay = overlay or Overlay(REPO_ROOT)
    unassigned = overlay.unassigned_files()
    if unassigned:
        listed = "\n  ".join(str(f) for f in unassigned)
        raise SeriesError(
            "overlay files that belong to no patch (list them on the patch's line in "
            f"patches/series, or on a 'local' line):\n  {listed}"
        )
    repo = work / "tree"
    submodules = [p.path for p in lock.submodules]
    unneeded = [p.path for p in lock.submodules if "unix" not in p.builds]
    report = Report(base=str(base), out_dir=work / "patches")
    init_work_repo(base, repo, unneeded)
    copy_local_files(overlay, repo)
    tools_missing = missing_tools()
    if tools_missing:
        report.checks_skipped.append(
            f"codeformat.py -c: not run, {', '.join(tools_missing)} not installed "
            "(Debian: apt-get install uncrustify)"
        )
    if build_each:
        report.base_build, _ = build(repo, work / "logs" / "00-base.log")
    for i, entry in enumerate(overlay.series_entries(), 1):
        text = entry.patch.read_text()
        paths = [*patch_paths(text), *(str(f) for f in entry.files)]
        step = Step(entry.patch.name, patch_subject(text), patch_target(paths, submodules))
        report.steps.append(step)
        apply_entry(repo, overlay, entry, step, author)
        print(f"series: {step.patch}: {step.status}", flush=True)
        if step.status != "applied":
            continue
        if step.target in SAME_COMMIT_RULES:
            step.log_issues = check_message(repo, step.commit)
        if step.target == "micropython":
            # ruff runs regardless; only the C check needs uncrustify.
            step.format_issues, step.format_not_run = check_format(
                repo, changed_files(repo, step.commit), check_c=not tools_missing
            )
        if build_each:
            log = work / "logs" / f"{i:02d}-{step.patch}.log"
            step.build, step.build_seconds = build(repo, log)
            print(f"series:   build {step.build} ({step.build_seconds:.0f} s)", flush=True)
    format_patches(repo, report.steps, work / "patches")
    return report


def format_report(report: Report) -> str:
    lines = [f"base: {report.base} (build before any patch: {report.base_build})", ""]
    head = "| # | patch | project | applies | builds | codeformat | verifygitlog |"
    lines += [head, "|---|---|---|---|---|---|---|"]
    for i, s in enumerate(report.steps, 1):
        fmt = "-" if s.status != "applied" or s.target != "micropython" else "ok"
        if s.format_issues or s.format_not_run:
            parts = ["changes " + ", ".join(s.format_issues)] if s.format_issues else []
            if s.format_not_run:
                parts.append("not run for " + ", ".join(s.format_not_run))
            fmt = "; ".join(parts)
        log = "-" if s.status != "applied" or s.target not in SAME_COMMIT_RULES else "ok"
        if s.log_issues:
            log = "; ".join(s.log_issues)
        build = f"{s.build} ({s.build_seconds:.0f} s)" if s.build != "not run" else s.build
        lines.append(f"| {i} | {s.patch} | {s.target} | {s.status} | {build} | {fmt} | {log} |")
    lines.append("")
    rebase = [s.patch for s in report.steps if s.status == "needs rebase"]
    lines.append("needs a rebase: " + (", ".join(rebase) if rebase else "none"))
    upstream = [s.patch for s in report.steps if s.status == "already upstream"]
    if upstream:
        lines.append("already upstream (skipped): " + ", ".join(upstream))
    others = sorted({s.target for s in report.steps if s.target != "micropython"})
    for target in others:
        lines.append(f"{target}: its patches go to that project (or a submodule update)")
    lines += report.checks_skipped
    lines.append(f"multi_bluetooth on the final tree: {report.suite}")
    if report.out_dir is not None:
        lines.append(f"patches written to {report.out_dir}")
    return "\n".join(lines)


def suite_verdict(pair: str, results: list[Result]) -> str:
    """The suite's outcome against expected.toml: "as expected [...]" or "FAILED: ..."."""
    wrong = expectations.differences(
        "multi_bluetooth", ((pair, r.test, r.outcome, r.output) for r in results)
    )
    summary = outcome_summary(r.outcome for r in results)
    return f"FAILED: {'; '.join(wrong)} [{summary}]" if wrong else f"as expected [{summary}]"
