"""Run upstream's multi-instance Bluetooth tests between unix instances over the radio.

Each test gets a fresh virtual radio and its own run of ``run-multitests.py``
bounded by a timeout, so one hung test cannot stall or poison the others.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .build import unix_binary
from .radio import RadioProcess

# Tests that cannot run on two unix processes over a virtual radio.
EXCLUDED = {
    "stress_deepsleep_reconnect.py": "needs machine.deepsleep() and a board that reboots",
}

TEST_TIMEOUT_S = 240
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


def instance_arg(binary: Path, pty: str, home: Path) -> str:
    """A ``-t`` argument for run-multitests.py.

    Environment given there replaces the instance's whole environment, so it
    also carries the MICROPYPATH that run-multitests.py would have set.  Each
    instance gets a HOME of its own, where the unix port keeps its bonds
    (~/.micropython/btstack_bonds), like two separate devices.
    """
    return f"exec:{binary},MICROPYBTUART={pty},MICROPYPATH=.frozen:../extmod,HOME={home}"


def _run_one(
    tree: Path, test: Path, stacks: tuple[str, ...], trace: Path | None, show: bool = False
) -> Result:
    t0 = time.monotonic()
    with (
        RadioProcess(count=len(stacks), trace_dir=trace) as radio,
        tempfile.TemporaryDirectory(prefix="multitest-home-") as homes,
    ):
        cmd = [sys.executable, str(tree / "tests" / "run-multitests.py")]
        for i, (stack, pty) in enumerate(zip(stacks, radio.ptys, strict=True)):
            home = Path(homes) / f"instance{i}"
            home.mkdir()
            cmd += ["-t", instance_arg(unix_binary(stack), pty, home)]
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
) -> list[Result]:
    results = []
    for test in sorted(tests):
        if test.name in EXCLUDED:
            results.append(Result(test.name, "excluded", 0.0, EXCLUDED[test.name]))
            print(f"{test.name}: excluded ({EXCLUDED[test.name]})", flush=True)
            continue
        r = _run_one(tree, test, stacks, trace, show_output)
        print(f"{test.name}: {r.outcome} ({r.seconds:.1f} s)", flush=True)
        if show_output or (verbose and r.detail):
            print(r.output)
        results.append(r)
    return results


def suite_tests(tree: Path, directory: str = "multi_bluetooth") -> list[Path]:
    return sorted((tree / "tests" / directory).glob("*.py"))


def format_table(stacks: tuple[str, ...], results: list[Result]) -> str:
    name = "/".join(stacks)
    width = max([len(r.test) for r in results] + [4])
    rule = f"|{'-' * (width + 2)}|{'-' * (len(name) + 2)}|"
    lines = [f"| {'test'.ljust(width)} | {name} |", rule]
    lines += [f"| {r.test.ljust(width)} | {r.outcome.ljust(len(name))} |" for r in results]
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    lines.append(", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return "\n".join(lines)
