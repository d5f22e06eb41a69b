"""The unit, power-cut and migration tests again, under ASan + UBSan, for every
compile-time configuration of the core (bondstore_harness.CONFIGS).

ctypes needs the sanitizer runtime loaded first, so each configuration runs in a
child pytest with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``; UBSan is built
with -fno-sanitize-recover, so any report aborts the child and fails the case.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from bondstore_harness import CONFIGS, HERE, ROOT, build


@pytest.mark.skipif(bool(os.environ.get("MP_BONDSTORE_SANITIZE")), reason="already sanitized")
@pytest.mark.compiles
@pytest.mark.parametrize("config", list(CONFIGS))
def test_under_asan_and_ubsan(config: str) -> None:
    build(config, sanitize=True)
    libasan = subprocess.run(
        ["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = dict(
        os.environ,
        LD_PRELOAD=libasan,
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
        MP_BONDSTORE_CONFIG=config,
        MP_BONDSTORE_SANITIZE="1",
    )
    tests = [str(HERE / f) for f in ("test_unit.py", "test_migrate.py", "test_fuzz.py")]
    # The full power-cut sweep is slow under ASan: its small workload covers every point.
    tests.append(str(HERE / "test_powercut.py") + "::test_every_cut_of_a_small_workload")
    # At a lower priority (nice): in the suite this runs beside cases that
    # rely on their instances and radio keeping pace, which it must not slow.
    # In one process (-n 0; pyproject's addopts say -n auto): a pool of
    # pytest-xdist workers per configuration, each a Python under ASan's
    # allocator, cost 16 s of CPU against 7 s, and in the suite, with three
    # configurations at once, 54 s of wall time each.
    proc = subprocess.run(
        [
            "nice",
            "-n",
            "10",
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "-x",
            *tests,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    print(f"\nASan+UBSan, {config}:", proc.stdout.strip().splitlines()[-1] if proc.stdout else "")
    assert proc.returncode == 0, tail
    assert "runtime error" not in proc.stderr and "AddressSanitizer" not in proc.stderr, tail
