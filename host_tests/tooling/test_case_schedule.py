"""host_tests/case_schedule.py: cases go out one at a time, long ones apart.

The scheduler is driven as pytest-xdist's controller drives it: workers join,
report their collection, and each finished case asks for the next.
"""

from __future__ import annotations

import random

from case_schedule import LONG_CASES, LongCasesApart
from xdist.scheduler import LoadScheduling

SWEEP = LONG_CASES[0]


class FakeConfig:
    def __init__(self, workers: int) -> None:
        self.values = {"tx": [f"{workers}*popen"], "maxschedchunk": None}

    def getvalue(self, name: str) -> object:
        return self.values[name]

    getoption = getvalue


class FakeNode:
    """A worker: what it was sent, in order, and what it has not finished."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.gateway = type("Gateway", (), {"id": name})()
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def collection() -> list[str]:
    light = [f"host_tests/bondstore/test_unit.py::test_{i}" for i in range(300)]
    long = [f"{SWEEP}test_sweep[{i}]" for i in range(4)]
    rest = [f"host_tests/integration/test_multi_bluetooth.py::test_{i}" for i in range(220)]
    return light + long + rest  # run_order's order


def started(
    workers: int, scheduler: type[LoadScheduling] = LongCasesApart
) -> tuple[LoadScheduling, list[FakeNode]]:
    """A scheduler whose workers have joined and collected; its first cases sent."""
    sched = scheduler(FakeConfig(workers))  # type: ignore[arg-type]
    nodes = [FakeNode(f"gw{i}") for i in range(workers)]
    for node in nodes:
        sched.add_node(node)  # type: ignore[arg-type]
        sched.add_node_collection(node, collection())  # type: ignore[arg-type]
    sched.schedule()
    return sched, nodes


def run(
    workers: int, seed: int, scheduler: type[LoadScheduling] = LongCasesApart
) -> tuple[list[str], dict[str, list[int]]]:
    """Play a session in which cases finish in a random order (a worker runs
    its oldest case); the order cases were sent in, and for each worker the
    number of long cases it held after each of its cases."""
    ids = collection()
    sched, nodes = started(workers, scheduler)
    rng = random.Random(seed)
    queues: dict[str, list[int]] = {n.name: [] for n in nodes}
    while not sched.tests_finished:
        busy = [n for n in nodes if sched.node2pending[n]]  # type: ignore[index]
        node = rng.choice(busy)
        sched.mark_test_complete(node, sched.node2pending[node][0])  # type: ignore[index]
        queue = sched.node2pending[node]  # type: ignore[index]
        queues[node.name].append(sum(ids[i].startswith(SWEEP) for i in queue))
    order = [ids[i] for n in nodes for i in n.sent]
    return order, queues


def test_every_case_is_sent_once() -> None:
    for seed in range(20):
        order, _ = run(6, seed)
        assert sorted(order) == sorted(collection())


def test_no_worker_ever_holds_two_long_cases() -> None:
    for seed in range(50):
        _, queues = run(6, seed)
        assert max(max(q, default=0) for q in queues.values()) == 1, seed


def test_without_it_a_worker_would_hold_two() -> None:
    """The same sessions under pytest-xdist's own load scheduling (with its
    chunks): the check above can fail."""
    worst = 0
    for seed in range(50):
        _, queues = run(6, seed, LoadScheduling)
        worst = max(worst, *(max(q, default=0) for q in queues.values()))
    assert worst > 1


def test_cases_are_sent_one_at_a_time_after_the_first_two() -> None:
    sched, nodes = started(2)
    assert [len(n.sent) for n in nodes] == [2, 2]
    sched.mark_test_complete(nodes[0], nodes[0].sent[0])  # type: ignore[arg-type]
    assert [len(n.sent) for n in nodes] == [3, 2]
