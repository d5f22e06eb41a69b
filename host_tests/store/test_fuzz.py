"""Loader fuzzing: fuzz_loader.c built with gcc, ASan + UBSan and trace-pc coverage.

CI runs a short deterministic campaign (fixed seed, fixed number of executions).
Long run on demand, e.g. ten minutes::

    FUZZ_SECONDS=600 python -m pytest host_tests/store/test_fuzz.py -s

or build/run the binary directly (path printed by the test):
``fuzz_loader EXECS SEED [SECONDS]``.  A failing input is written to
``fuzz-crash.bin`` in the build directory.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from tlvstore_harness import BUILD_DIR, CORE_DIR, CORE_SOURCES, HEADERS, HERE, SAN, WARN

CI_EXECS = 40000
SEED = 1


def build_fuzzer() -> Path:
    srcs = [HERE / "fuzz_loader.c", HERE / "shim_mem.c"]
    h = hashlib.sha256()
    for p in CORE_SOURCES + srcs + HEADERS:
        h.update(p.read_bytes())
    out = BUILD_DIR / f"fuzz_loader-{h.hexdigest()[:16]}"
    if out.exists():
        return out
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    flags = [*WARN, "-O1", "-g", *SAN, f"-I{CORE_DIR}", f"-I{HERE}"]
    core_o = out.with_suffix(".core.o")
    subprocess.run(
        [
            "gcc",
            *flags,
            "-fsanitize-coverage=trace-pc",
            "-c",
            str(CORE_SOURCES[0]),
            "-o",
            str(core_o),
        ],
        check=True,
    )
    tmp = out.with_suffix(".tmp")
    subprocess.run(["gcc", *flags, *map(str, srcs), str(core_o), "-o", str(tmp)], check=True)
    tmp.replace(out)
    return out


def test_fuzz_loader(capsys: pytest.CaptureFixture[str]) -> None:
    exe = build_fuzzer()
    seconds = os.environ.get("FUZZ_SECONDS", "0")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1")
    env.pop("LD_PRELOAD", None)
    proc = subprocess.run(
        [str(exe), str(CI_EXECS), str(SEED), seconds],
        cwd=BUILD_DIR,
        capture_output=True,
        text=True,
        env=env,
        timeout=max(120, float(seconds) * 2 + 60),
    )
    with capsys.disabled():
        print(f"\nloader fuzz ({exe.name}): {proc.stdout.strip()}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "crashes=0" in proc.stdout
    with open(BUILD_DIR / "fuzz_result.txt", "w") as f:
        f.write(proc.stdout)
