"""The loader against mutated files: valid version-2 and version-1 files with bytes
flipped, cut, spliced and grown, on both kinds of filesystem.

Checks for every input: load() returns 0 or ERR_PROTECTED; a protected file is never
written; after an accepted load, a commit succeeds and the next load reads exactly
what RAM held; bondfile.py reads the committed file the same way.  Run under ASan
by test_sanitizers.py, where any out-of-bounds access aborts.  Deterministic
(seeded); FUZZ_CASES=N for a longer run.
"""

from __future__ import annotations

import os
import random

import bondfile
from bondstore_harness import MAIN, RESERVE, V1_SIDE, C, Lib, Store, tag
from test_migrate import FIXTURE, v1_file, v1_side

CASES = int(os.environ.get("FUZZ_CASES", "600"))


def seeds(lib: Lib) -> list[bytes]:
    out = [FIXTURE.read_bytes(), v1_file([(tag("BTD", 0), b"x" * 60, 1)])]
    for atomic in (False, True):
        lib.reset(atomic=atomic)
        s = Store(lib)
        s.load()
        for i in range(5):
            s.set(tag("BTD", i), bytes([i]) * 60)
            s.set(tag("BTC", i), bytes([i]) * 8)
            s.commit()
        out.append(lib.file(MAIN))
    return out


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[rng.randrange(len(b))] = rng.choice([0, 0xFF, rng.randrange(256)])
        elif op == 2:
            del b[rng.randrange(len(b) + 1) :]
        elif op == 3:
            b += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        elif op == 4:
            other = rng.choice(pool)
            at = rng.randrange(len(other) + 1)
            b[rng.randrange(len(b) + 1) :] = other[at:]
        elif op == 5 and len(b) >= 8:
            # Header fields: lengths and generations are where parsers go wrong.
            at = rng.choice([6, 7, 8, 512 + 6, 4096 + 6]) if len(b) > 4096 + 8 else 6
            if at < len(b):
                b[at] = rng.randrange(256)
    return bytes(b)


def test_mutated_files(lib: Lib) -> None:
    rng = random.Random(20261203)
    pool = seeds(lib)
    outcomes = {"accepted": 0, "protected": 0}
    for i in range(CASES):
        data = mutate(rng, rng.choice(pool), pool)
        side = v1_side(pool[1], gen=rng.randrange(3)) if rng.random() < 0.1 else None
        lib.reset(atomic=bool(i & 1))
        lib.set_file(MAIN, data)
        lib.set_file(V1_SIDE, side)
        s = Store(lib, capacity=rng.choice([2000, 1509, 300, 40]))
        rc = s.load()
        assert rc in (0, C["ERR_PROTECTED"]), rc
        if rc:
            outcomes["protected"] += 1
            s.set(tag("SMER"), b"k" * 16)
            assert s.commit() == C["ERR_PROTECTED"]
            assert lib.file(MAIN) == data and lib.file(V1_SIDE) == side, (
                "a protected file was written"
            )
            continue
        outcomes["accepted"] += 1
        if s.set(tag("SMER"), b"k" * 16) == C["ERR_FULL"]:
            continue  # a salvaged or small store may have no room left
        assert s.commit() == 0
        ram = s.items()
        after = Store(lib, capacity=2000)
        assert after.load() == 0 and after.items() == ram and after.found == set()
        parsed = bondfile.parse(lib.file(MAIN))
        assert {t: e.value for t, e in parsed.entries.items()} == ram and not parsed.issues
        assert lib.file(RESERVE) is None or lib.atomic
    print("\nfuzz:", CASES, "mutated files:", outcomes)
    assert outcomes["accepted"] and outcomes["protected"]
