"""Run the ctypes unit, model and fault-injection tests against the ASan + UBSan build.

ctypes needs the sanitizer runtime loaded first, so the tests run in a child pytest
with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)`` and MP_TLVSTORE_VARIANT=asan
(conftest.py then loads the sanitized library).  UBSan is built with
-fno-sanitize-recover, so any report aborts the child and fails this test.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tlvstore_harness import HERE, ROOT, build


@pytest.mark.skipif(
    bool(os.environ.get("MP_TLVSTORE_VARIANT")), reason="already running a variant"
)
def test_unit_and_fault_tests_under_asan_ubsan() -> None:
    build("asan")
    libasan = subprocess.run(
        ["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = dict(
        os.environ,
        LD_PRELOAD=libasan,
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
        MP_TLVSTORE_VARIANT="asan",
    )
    tests = [str(HERE / f) for f in ("test_unit.py", "test_model.py", "test_faults.py")]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    print("\nASan+UBSan run:", proc.stdout.strip().splitlines()[-1] if proc.stdout else "")
    assert proc.returncode == 0, tail
    assert "runtime error" not in proc.stderr and "AddressSanitizer" not in proc.stderr, tail
