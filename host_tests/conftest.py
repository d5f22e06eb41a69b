"""How many cases run at once (``pytest -n auto``, pytest-xdist).

Most cases spend their time waiting: two MicroPython processes and a radio
that follows the timing model of a real link (connection events, advertising
intervals).  Measured on 2 cores, one case at a time (2026-12-06, the 32
btstack/nimble multitests): 86 s of wall time for 32 s of CPU (user +
system), i.e. a case keeps about 0.37 of a core busy, now that an instance
waiting in machine.idle() sleeps until the next HCI poll instead of spinning
in sched_yield() (patch 0029; before, a case took 0.8 of a core, and with 3
at a time a radio was starved for seconds).  So the pool is the cores
divided by 0.4, less a fifth of headroom for the CPU-bound cases (the
flashdev power-cut sweeps, the sanitizer builds), which start first: 4 on
2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import suite_report

from mpoverlay import BUILD_DIR, REPO_ROOT
from mpoverlay.tree import available_upstream

CPU_PER_CASE = 0.4  # cores a case keeps busy, measured as above (with a margin)
POOL_HEADROOM = 0.8
_background_build: subprocess.Popen[bytes] | None = None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, round((cores or 1) * POOL_HEADROOM / CPU_PER_CASE))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest-xdist hands out cases in this order.  First the cases that need
    # no firmware, while the background build (below) makes it; then, of the
    # rest, the longest first: a CPU-bound case started last would run on
    # alone while the rest of the pool sits idle.
    items.sort(
        key=lambda item: (
            "built_tree" in getattr(item, "fixturenames", ()),
            item.get_closest_marker("cpu_bound") is None,
        )
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Build the firmware in the background as the session starts (in the
    controller, once), so that the workers run the host tests meanwhile
    instead of waiting for it in their first integration case."""
    global _background_build
    if hasattr(session.config, "workerinput") or not session.config.getoption("numprocesses"):
        return
    if available_upstream(os.environ.get("MICROPY_DIR")) is None:
        return
    log = BUILD_DIR / "logs" / "suite-build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(here / "integration"), str(here), str(REPO_ROOT), str(REPO_ROOT / "tools")]
    )
    with open(log, "w") as out:
        # A failed build is reported by the first case that needs it (the
        # built_tree fixture builds again and shows the error).
        _background_build = subprocess.Popen(
            [sys.executable, "-c", "import integration_support as s; s.build_tree()"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    if _background_build is not None and _background_build.poll() is None:
        _background_build.terminate()
        _background_build.wait()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    suite_report.merge(getattr(node, "workeroutput", {}).get("suite_report", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    suite_report.write(terminalreporter)
