"""Run upstream's multi-instance Bluetooth tests between unix instances over the radio.

Each test gets a fresh virtual radio and its own run of ``run-multitests.py``
bounded by a timeout, so one hung test cannot stall or poison the others.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .build import unix_binary
from .radio import RadioProcess

# Tests that cannot run on two unix processes over a virtual radio.
EXCLUDED = {
    "stress_deepsleep_reconnect.py": "needs machine.deepsleep() and a board that reboots",
}

# instance0/instance1 stacks that the suites run: both homogeneous pairs, and
# each stack in each role of a mixed pair.
STACK_PAIRS: tuple[tuple[str, str], ...] = (
    ("btstack", "btstack"),
    ("nimble", "nimble"),
    ("btstack", "nimble"),
    ("nimble", "btstack"),
)

TEST_TIMEOUT_S = 240
# What run-multitests.py gives an instance (relative to the test's directory).
DEFAULT_MICROPYPATH = ".frozen:../extmod"
# The runner's verdict: "<file> on <instances>: pass", or with -s (show output)
# the verdict alone on a line after the output.
_RESULT_RE = re.compile(r"^(?:\S+ on \S+: )?(?P<result>pass|skip|FAIL)$", re.M)


@dataclass
class Result:
    test: str
    outcome: str  # pass / fail / skip / excluded / timeout / error
    seconds: float
    output: str = ""  # run-multitests.py's output (or the exclusion reason)

    @property
    def detail(self) -> str:
        """What to show for a test that did not pass."""
        return "" if self.outcome == "pass" else self.output


def instance_arg(
    binary: Path, pty: str, home: Path, micropypath: str = DEFAULT_MICROPYPATH
) -> str:
    """A ``-t`` argument for run-multitests.py.

    Environment given there replaces the instance's whole environment, so it
    also carries the MICROPYPATH that run-multitests.py would have set (or
    ``micropypath``).  Each instance gets a HOME of its own, where the unix
    port keeps its bonds (~/.micropython/btstack_bonds), like two separate
    devices.
    """
    # run-multitests.py splits the argument at ',' and each variable at '='.
    if "," in str(binary):
        raise ValueError(f"run-multitests.py cannot run {binary} (',' in the path)")
    for value in (pty, str(home), micropypath):
        if "," in value or "=" in value:
            raise ValueError(f"run-multitests.py cannot pass {value!r} (',' or '=')")
    return f"exec:{binary},MICROPYBTUART={pty},MICROPYPATH={micropypath},HOME={home}"


def write_launcher(path: Path, binary: Path) -> Path:
    """A script at ``path`` that runs ``binary`` in the instance's HOME.

    run-multitests.py starts every instance in the test file's directory, so
    two instances share their working directory where two boards would each
    have a filesystem of their own: a file a test names relatively (e.g.
    aioble's default ``ble_secrets.json``) would be written by one instance
    and read by the other.  The launcher makes HOME the instance's own
    working directory, kept across restarts (expect_reboot runs it again).
    """
    path.write_text(f'#!/bin/sh\ncd "$HOME" || exit 1\nexec {shlex.quote(str(binary))} "$@"\n')
    path.chmod(0o755)
    return path


def _run_one(
    tree: Path,
    test: Path,
    stacks: tuple[str, ...],
    trace: Path | None,
    show: bool = False,
    public_addresses: bool = False,
    micropypath: str = DEFAULT_MICROPYPATH,
    binaries: Mapping[str, Path] | None = None,
    own_directory: bool = True,
) -> Result:
    t0 = time.monotonic()
    radio_process = RadioProcess(len(stacks), trace, public_addresses)
    with (
        radio_process as radio,
        tempfile.TemporaryDirectory(prefix="multitest-home-") as homes,
    ):
        cmd = [sys.executable, str(tree / "tests" / "run-multitests.py")]
        for i, (stack, pty) in enumerate(zip(stacks, radio.ptys, strict=True)):
            home = Path(homes) / f"instance{i}"
            home.mkdir()
            binary = (binaries or {}).get(stack) or unix_binary(stack)
            if own_directory:
                binary = write_launcher(Path(homes) / f"instance{i}.sh", binary)
            cmd += ["-t", instance_arg(binary, pty, home, micropypath)]
        cmd += ["-r", str(tree / "tests" / "results"), *(["-s"] if show else []), str(test)]
        proc = subprocess.Popen(
            cmd,
            cwd=tree / "tests",
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=TEST_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return Result(test.name, "timeout", time.monotonic() - t0, out)
    matches = list(_RESULT_RE.finditer(out))
    m = matches[-1] if matches else None
    outcome = {"pass": "pass", "skip": "skip", "FAIL": "fail"}[m["result"]] if m else "error"
    return Result(test.name, outcome, time.monotonic() - t0, out)


def run_suite(
    tree: Path,
    tests: Iterable[Path],
    stacks: tuple[str, ...],
    trace: Path | None = None,
    verbose: bool = False,
    show_output: bool = False,
    public_addresses: bool = False,
    micropypath: str = DEFAULT_MICROPYPATH,
    binaries: Mapping[str, Path] | None = None,
    own_directory: bool = True,
) -> list[Result]:
    """Run each test on a fresh radio; public_addresses gives every controller
    a public address (else the devices use random static addresses),
    micropypath is the instances' MICROPYPATH, and binaries maps a stack to
    the firmware to run (default: ours, in build/unix-<stack>); with
    own_directory (the default) each instance runs in its HOME (see
    write_launcher): the tests keep files at relative paths, and cases that
    run at once must not share them."""
    results = []
    for test in sorted(tests):
        if test.name in EXCLUDED:
            results.append(Result(test.name, "excluded", 0.0, EXCLUDED[test.name]))
            print(f"{test.name}: excluded ({EXCLUDED[test.name]})", flush=True)
            continue
        r = _run_one(
            tree,
            test,
            stacks,
            trace,
            show_output,
            public_addresses,
            micropypath,
            binaries,
            own_directory,
        )
        print(f"{test.name}: {r.outcome} ({r.seconds:.1f} s)", flush=True)
        if show_output or (verbose and r.detail):
            print(r.output)
        results.append(r)
    return results


def run_test(tree: Path, test: Path, stacks: tuple[str, ...], trace: Path | None = None) -> Result:
    """Run one test on a fresh radio, quietly; its output includes every
    instance's lines (run-multitests.py -s)."""
    return _run_one(tree, test, stacks, trace, show=True)


def suite_tests(tree: Path, directory: str = "multi_bluetooth") -> list[Path]:
    return sorted((tree / "tests" / directory).glob("*.py"))


def markdown_table(rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table whose first row is the header, padded to
    column width so it also reads as plain text."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines


def outcome_summary(outcomes: Iterable[str]) -> str:
    """How many of each outcome, e.g. "1 fail, 27 pass"."""
    return ", ".join(f"{n} {o}" for o, n in sorted(Counter(outcomes).items()))


def format_table(stacks: tuple[str, ...], results: list[Result]) -> str:
    rows = [["test", "/".join(stacks)], *([r.test, r.outcome] for r in results)]
    lines = markdown_table(rows)
    lines.append(outcome_summary(r.outcome for r in results))
    return "\n".join(lines)
