"""How pytest-xdist hands cases to workers (see host_tests/conftest.py).

pytest-xdist's load scheduling sends cases in chunks (of about a
twenty-fourth of the suite each, at first) and keeps two queued on every
worker.  Two things went wrong with that, measured on 2 cores: a chunk
took all four power-cut sweeps to one worker, which ran them one after the
other (2.5 minutes, the suite's longest path, while the other workers had
finished), and cases did not start in run_order.  So: one case at a time,
and never two long cases queued on one worker.
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadScheduling
from xdist.workermanage import WorkerController

# Cases that keep a worker busy for long: the power-cut sweeps (a minute or
# so each, with a process pool of their own) and the sanitizer reruns (10 to
# 16 s of CPU each: queued two on one worker, at the end of the suite, they
# ran one after the other while three workers had finished).
LONG_CASES = (
    "host_tests/integration/test_flashdev_powercut.py::",
    "host_tests/bondstore/test_sanitizers.py::",
)


def is_long(nodeid: str) -> bool:
    return nodeid.startswith(LONG_CASES)


class LongCasesApart(LoadScheduling):
    """Load scheduling, one case at a time, at most one long case per worker."""

    def __init__(self, config: pytest.Config, log: object = None) -> None:
        super().__init__(config, log)
        self.maxschedchunk = 1

    def _send_tests(self, node: WorkerController, num: int) -> None:
        assert self.collection is not None
        holds_long = any(is_long(self.collection[i]) for i in self.node2pending[node])
        chosen: list[int] = []
        for index in self.pending:
            if len(chosen) == num:
                break
            if is_long(self.collection[index]):
                if holds_long:
                    continue
                holds_long = True
            chosen.append(index)
        if not chosen:  # only long cases are left
            chosen = self.pending[:num]
        if chosen:
            taken = set(chosen)
            self.pending[:] = [i for i in self.pending if i not in taken]
            self.node2pending[node].extend(chosen)
            node.send_runtest_some(chosen)
