"""Stateful property test: the store against a Python dict model (hypothesis).

Rules: store, delete, clear, explicit compaction, restart (reload from the in-memory
"disk"), and crash (power cut at a drawn fault point during an operation, then
restart: the state must be the model before or after that operation).  Invariants:
RAM == model, the file never exceeds 2 x live data + header, and no value that is not
live is present in the store files.  Derandomized, so CI runs are deterministic.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from tlvstore_harness import (
    CUT_GARBAGE,
    MAIN,
    MODE_OK,
    Lib,
    Store,
    apply,
    build,
    model_apply,
    tag,
)

TAGS = [tag("BTD", i) for i in range(6)] + [tag("SMER"), tag("SMIR"), tag("BTC", 0)]
LIB: Lib | None = None


def get_lib() -> Lib:
    global LIB
    if LIB is None:
        LIB = Lib(build(os.environ.get("MP_TLVSTORE_VARIANT", "plain")))
    return LIB


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.lib = get_lib()
        self.model: dict[int, bytes] = {}
        self.counter = 0
        self.seen: list[bytes] = []
        self.truncate = True
        self.store: Store

    @initialize(truncate=st.booleans())
    def start(self, truncate: bool) -> None:
        self.lib.mem_reset()
        self.truncate = truncate
        self.restart()

    def fresh_value(self, body: bytes) -> bytes:
        # Unique 4-byte marker so leak checks cannot match by coincidence.
        self.counter += 1
        v = bytes([0xEE, 0x5A]) + self.counter.to_bytes(2, "little") + body
        self.seen.append(v)
        return v

    @rule(t=st.sampled_from(TAGS), body=st.binary(min_size=4, max_size=96))
    def do_store(self, t: int, body: bytes) -> None:
        op = ("store", t, self.fresh_value(body))
        assert apply(self.store, op) == 0
        self.model = model_apply(self.model, op)

    @rule(t=st.sampled_from(TAGS))
    def do_delete(self, t: int) -> None:
        assert self.store.delete(t) == 0
        self.model.pop(t, None)

    @rule()
    def do_clear(self) -> None:
        assert self.store.clear() == 0
        self.model.clear()

    @rule()
    def do_compact(self) -> None:
        assert self.store.compact() == 0

    @rule()
    def restart(self) -> None:
        self.store = Store(self.lib, truncate=self.truncate)
        rc, res = self.store.load()
        assert rc == 0, res.flag_names()
        assert res.flag_names() <= {"NO_FILE"}, res.flag_names()

    @rule(
        kind=st.sampled_from(["store", "delete", "clear"]),
        t=st.sampled_from(TAGS),
        body=st.binary(min_size=4, max_size=96),
        point=st.integers(min_value=0, max_value=3000),
        lose=st.booleans(),
    )
    def crash(self, kind: str, t: int, body: bytes, point: int, lose: bool) -> None:
        op: tuple = {"store": ("store", t, self.fresh_value(body)), "delete": ("delete", t)}.get(
            kind, ("clear",)
        )
        before, after = self.model, model_apply(self.model, op)
        self.lib.fault.cut_at = self.lib.stats.points + point
        self.lib.fault.cut_mode = CUT_GARBAGE
        self.lib.fault.cut_lose_unsynced = int(lose)
        apply(self.store, op)
        self.lib.dll.shim_mem_power_on()
        self.store = Store(self.lib, truncate=self.truncate)
        rc, res = self.store.load()
        assert rc == 0, res.flag_names()
        state = self.store.items()
        assert state in (before, after)
        self.model = state

    @invariant()
    def matches_model(self) -> None:
        assert self.store.items() == self.model
        assert self.store.mode == MODE_OK

    @invariant()
    def bounded_and_scrubbed(self) -> None:
        main = self.lib.mem_get(MAIN) or b""
        live = sum(8 + 16 + len(v) for v in self.model.values())
        assert len(main) <= 24 + 2 * live or (not self.model and len(main) <= 24)
        blob = main + (self.lib.mem_get(1) or b"")
        live_values = set(self.model.values())
        for v in self.seen:
            if v not in live_values:
                assert v not in blob


TestStoreModel = StoreMachine.TestCase
TestStoreModel.settings = settings(
    max_examples=int(os.environ.get("MODEL_EXAMPLES", "150")),
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
