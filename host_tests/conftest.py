"""How many cases run at once (``pytest -n auto``, pytest-xdist).

Most cases spend their time waiting: two MicroPython processes and a radio
that follows the timing model of a real link (connection events, advertising
intervals).  Measured on 2 cores, one case at a time (2026-12-06, the 32
btstack/nimble multitests): 86 s of wall time for 32 s of CPU (user +
system), i.e. a case keeps about 0.37 of a core busy, now that an instance
waiting in machine.idle() sleeps until the next HCI poll instead of spinning
in sched_yield() (patch 0029; before, a case took 0.8 of a core, and with 3
at a time a radio was starved for seconds).  So the pool is the cores
divided by 0.4, less a fifth of headroom for the cases that compile (the
sanitizer builds) or run a pool of their own (the flashdev power-cut
sweeps): 4 on 2 cores.  (Starting those first, or building the firmware in
the background while the host tests ran, made the suite slower, 4:47 and
6:10 against 4:32: both leave workers waiting for the build.)
"""

from __future__ import annotations

import os

import pytest
import suite_report

CPU_PER_CASE = 0.4  # cores a case keeps busy, measured as above (with a margin)
POOL_HEADROOM = 0.8


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, round((cores or 1) * POOL_HEADROOM / CPU_PER_CASE))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    suite_report.merge(getattr(node, "workeroutput", {}).get("suite_report", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    suite_report.write(terminalreporter)
