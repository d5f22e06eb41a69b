"""How many cases run at once (``pytest -n auto``, pytest-xdist).

Most cases spend their time waiting: two MicroPython processes and a radio
that follows the timing model of a real link (connection events, advertising
intervals).  Measured on 2 cores, one case at a time (2026-12-04): 12 min 0 s
of wall time for 9 min 53 s of CPU (user + system), i.e. a case keeps about
0.4 of a core busy.  But with 4 at a time on 2 cores, and in 2 of 6 runs with
3, a case that relies on the radio keeping pace failed (perf_gatt_char_write.py,
ble_gap_pair_bond_lru.py): the machine was then 80 % busy.  So the pool is the
cores divided by 0.8, minus a little headroom for the flashdev sweeps, which
run two processes of their own: 2 on 2 cores.
"""

from __future__ import annotations

import os

import pytest
import suite_report

CPU_PER_CASE = 0.8  # cores a case keeps busy, measured as above (with a margin)
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
