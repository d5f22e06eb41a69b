"""How many cases run at once (``pytest -n auto``, pytest-xdist).

Most cases spend their time waiting: two MicroPython processes and a radio
that follows the timing model of a real link (connection events, advertising
intervals).  Measured on 2 cores, one case at a time (2026-12-07, the 32
btstack/btstack multitests, ``pytest -n 1``): 65.9 s of wall time for 13.6 s
of CPU (user + system: 10.9 s in the runner and the instances, 2.7 s in the
radios, read from /proc as each stopped), i.e. a case keeps about 0.2 of a
core busy.  What got it there: an instance waiting in machine.idle() sleeps
until the next HCI poll instead of spinning in sched_yield() (patch 0029;
before, a case took 0.8 of a core, and with 3 at a time a radio's event loop
ran up to 0.97 s late), and radios are forked from a server that has Bumble
imported (mpoverlay/radio.py; 11.7 s of radio CPU for those 32 cases while
the server's preload silently failed).  So the pool is the cores divided by
0.2, less a fifth of headroom for the cases that compile (the sanitizer
builds) or run a pool of their own (the flashdev power-cut sweeps): 8 on 2
cores.  Measured from a clean clone, before patch 0030 made idle instances
cheaper still: 3:28 in pytest with 8, 3:45 with 6 (531 passed each).  See
run_order for the order cases start in, and case_schedule.py for
how they are handed to the workers.
"""

from __future__ import annotations

import os

import pytest
import suite_report
from case_schedule import LongCasesApart, is_long

CPU_PER_CASE = 0.2  # cores a case keeps busy, measured as above
POOL_HEADROOM = 0.8


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, round((cores or 1) * POOL_HEADROOM / CPU_PER_CASE))


def run_order(item: pytest.Item) -> int:
    """When a case starts (pytest-xdist hands them out in this order).

    The firmware's build (in the first case that needs it) is the suite's
    critical path: the machine is saturated while it runs.  So the long
    cases come first: the first of them starts the build at once (behind
    the light host tests, it started 9.5 s late), and none of them starts
    late and runs on alone.  The light host tests run beside the build, on
    the workers not waiting for it; then the rest of the firmware's cases,
    which leave some of the CPU idle (they wait on the radio's timing); then
    the C builds, which would have slowed the firmware's build (started just
    after it, they still did: 99 s against 53 s) and run their tests at a
    lower priority so as not to slow the last of those cases.
    """
    if item.get_closest_marker("compiles"):
        return 3
    if is_long(item.nodeid):  # the power-cut sweeps
        return 0
    return 2 if "built_tree" in getattr(item, "fixturenames", ()) else 1


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LongCasesApart | None:
    return LongCasesApart(config, log) if config.getoption("dist") == "load" else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=run_order)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    suite_report.merge(getattr(node, "workeroutput", {}).get("suite_report", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    suite_report.write(terminalreporter)
