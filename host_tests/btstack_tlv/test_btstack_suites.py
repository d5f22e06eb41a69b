"""BTstack's own CppUTest suites for TLV users and implementations, on our bond store.

Each suite is built from BTstack's sources and test file, unchanged, except that
the TLV implementation it instantiates (``btstack_tlv_posix``,
``btstack_tlv_flash_bank``) is replaced by shims returning ``bondstore_tlv.c``: a
``btstack_tlv_t`` over extmod/bondstore on a POSIX file, committing every change.
README.md lists the tests that do not apply and why.

Needs a BTstack tree (``BTSTACK_DIR``, or ``MICROPY_DIR`` / ``build/upstream``
with ``lib/btstack``) and CppUTest (Debian: ``apt-get install cpputest``);
otherwise skipped, with the reason.  Builds are cached under
``build/host_btstack_tlv/``, keyed by a hash of sources and flags.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import bondfile
import pytest

from mpoverlay.tree import available_upstream

HERE = Path(__file__).resolve().parent
SHIM_DIR = HERE / "shim"
ROOT = HERE.parents[1]
CORE_DIR = ROOT / "extmod" / "bondstore"
BUILD_DIR = ROOT / "build" / "host_btstack_tlv"

# As BTstack's test Makefiles build their ASan target ("make test").
BTSTACK_FLAGS = ["-DUNIT_TEST", "-g", "-Wall", "-fsanitize=address", "-DHAVE_ASSERT"]
CXX_FLAGS = ["-Wnarrowing", "-Wconversion-null"]
# Our own C files (adapter, shims, core) are held to the project's rules.
OUR_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes"]
OUR_SOURCES = [
    CORE_DIR / "bondstore.c",
    HERE / "bondstore_tlv.c",
]
OUR_HEADERS = [CORE_DIR / "bondstore.h", HERE / "bondstore_tlv.h", *sorted(SHIM_DIR.glob("*.h"))]

INTERNALS = "reads btstack_tlv_flash_bank_t's current_bank/write_offset (the flash bank layout)"
HAL_ONLY = "tests BTstack's RAM flash HAL (hal_flash_bank_memory.c), no TLV involved"
NO_SIGNED_WRITE = "le_device_db has no CSRKs/sign counters without ENABLE_LE_SIGNED_WRITE"


@dataclass(frozen=True)
class Suite:
    """One BTstack test program, built against our store."""

    name: str
    test_dir: str  # under the BTstack tree
    test_cpp: str
    btstack_sources: tuple[str, ...]  # under the BTstack tree; their TLV left out
    shim: str  # replaces the TLV implementation (in shim/)
    config_dir: str  # where its btstack_config.h is, under the BTstack tree
    signed_write: bool = True  # False: ENABLE_LE_SIGNED_WRITE undefined
    not_applicable: dict[str, str] = field(default_factory=dict)  # "GROUP.Test" -> why

    @property
    def id(self) -> str:
        return self.name if self.signed_write else f"{self.name} (no ENABLE_LE_SIGNED_WRITE)"


LE_DEVICE_DB_SOURCES = (
    "src/btstack_linked_list.c",
    "src/btstack_memory.c",
    "src/btstack_memory_pool.c",
    "src/btstack_util.c",
    "src/hci_dump.c",
    "src/ble/le_device_db_tlv.c",
    "platform/embedded/hal_flash_bank_memory.c",
)
LE_DEVICE_DB_SIGNED = (
    "remote_csrk_set",
    "remote_csrk_get",
    "local_csrk_set",
    "local_csrk_get",
    "remote_counter",
    "local_counter",
)

SUITES = [
    Suite(
        name="tlv_posix",
        test_dir="test/tlv_posix",
        test_cpp="tlv_test.cpp",
        btstack_sources=(
            "src/btstack_util.c",
            "src/btstack_linked_list.c",
            "src/hci_dump.c",
            "platform/posix/hci_dump_posix_fs.c",
        ),
        shim="btstack_tlv_posix.c",
        config_dir="test",
    ),
    Suite(
        name="flash_tlv",
        test_dir="test/flash_tlv",
        test_cpp="tlv_test.cpp",
        btstack_sources=(
            "src/btstack_util.c",
            "src/hci_dump.c",
            "src/classic/btstack_link_key_db_tlv.c",
            "platform/embedded/hal_flash_bank_memory.c",
            "platform/posix/hci_dump_posix_fs.c",
        ),
        shim="btstack_tlv_flash_bank.c",
        config_dir="test",
        not_applicable={
            "BSTACK_TLV.TestFullBank": INTERNALS,
            "BSTACK_TLV.TestAlmostFullBank": INTERNALS,
            "BSTACK_TLV.TestFullBankPlusMigrate": INTERNALS,
            "HAL_FLASH_bank.TestErased": HAL_ONLY,
            "HAL_FLASH_bank.TestWrite": HAL_ONLY,
            "HAL_FLASH_bank.TestWriteErase": HAL_ONLY,
        },
    ),
    Suite(
        name="le_device_db_tlv",
        test_dir="test/le_device_db_tlv",
        test_cpp="le_device_db_tlv_test.cpp",
        btstack_sources=LE_DEVICE_DB_SOURCES,
        shim="btstack_tlv_flash_bank.c",
        config_dir="test/le_device_db_tlv",
        signed_write=False,
        not_applicable={
            f"LE_DEVICE_DB_TLV.le_device_db_{t}": NO_SIGNED_WRITE for t in LE_DEVICE_DB_SIGNED
        },
    ),
    Suite(
        name="le_device_db_tlv",
        test_dir="test/le_device_db_tlv",
        test_cpp="le_device_db_tlv_test.cpp",
        btstack_sources=LE_DEVICE_DB_SOURCES,
        shim="btstack_tlv_flash_bank.c",
        config_dir="test/le_device_db_tlv",
    ),
]


# ---- Prerequisites --------------------------------------------------------


def find_btstack() -> tuple[Path | None, str]:
    """The BTstack tree to build from, or None and why there is none."""
    env = os.environ.get("BTSTACK_DIR")
    if env:
        path = Path(env).expanduser().resolve()
        hint = "BTSTACK_DIR must be a BTstack tree"
    else:
        upstream = available_upstream(os.environ.get("MICROPY_DIR"))
        if upstream is None:
            return None, (
                "BTstack TLV suites skipped: no BTstack tree found (set MICROPY_DIR=<MicroPython "
                "tree with lib/btstack>, or BTSTACK_DIR=<BTstack tree>)"
            )
        path = upstream / "lib" / "btstack"
        hint = "is the lib/btstack submodule checked out?"
    if all((path / s.test_dir / s.test_cpp).is_file() for s in SUITES):
        return path, ""
    return None, (
        f"BTstack TLV suites skipped: {path} has no test/tlv_posix, test/flash_tlv and "
        f"test/le_device_db_tlv ({hint})"
    )


@functools.cache
def cpputest_flags() -> tuple[list[str], list[str]] | None:
    """(compile flags, link flags) for CppUTest, or None if it is not installed."""
    if shutil.which("pkg-config"):
        r = subprocess.run(["pkg-config", "--exists", "cpputest"], check=False)
        if r.returncode == 0:
            out = subprocess.run(
                ["pkg-config", "--cflags", "--libs", "cpputest"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            cflags = [f for f in out if not f.startswith(("-l", "-L"))]
            return cflags, [f for f in out if f.startswith(("-l", "-L"))]
    # No pkg-config file: try the usual names.
    libs = ["-lCppUTest", "-lCppUTestExt"]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.cpp"
        src.write_text(
            '#include "CppUTest/CommandLineTestRunner.h"\n'
            "int main(int c, const char **v) {\n"
            "    return CommandLineTestRunner::RunAllTests(c, v);\n"
            "}\n"
        )
        r = subprocess.run(
            ["g++", str(src), *libs, "-o", str(Path(tmp) / "probe")],
            capture_output=True,
            check=False,
        )
    return ([], libs) if r.returncode == 0 else None


@pytest.fixture(scope="module")
def btstack() -> Path:
    path, reason = find_btstack()
    if path is None:
        pytest.skip(reason)
    if shutil.which("g++") is None or shutil.which("gcc") is None:
        pytest.skip("BTstack TLV suites skipped: gcc/g++ not found")
    if cpputest_flags() is None:
        pytest.skip(
            "BTstack TLV suites skipped: CppUTest not installed (Debian: apt-get install cpputest)"
        )
    return path


# ---- Building -------------------------------------------------------------


def _hash_files(h: hashlib._Hash, files: Iterable[Path]) -> None:
    for p in files:
        h.update(str(p).encode())
        h.update(p.read_bytes())


def build(suite: Suite, btstack: Path, capacity_adjust: int = 0) -> Path:
    """The suite's test program (cached; rebuilt when a source, header or flag changes)."""
    cpp_flags, link_flags = cpputest_flags() or ([], [])
    defines = [f"-DBONDSTORE_TLV_CAPACITY_ADJUST={capacity_adjust}"] if capacity_adjust else []
    btstack_sources = [btstack / s for s in suite.btstack_sources]
    ours = [*OUR_SOURCES, SHIM_DIR / suite.shim]
    if not suite.signed_write:
        ours.append(SHIM_DIR / "le_device_db_signed_write.c")
    test_cpp = btstack / suite.test_dir / suite.test_cpp
    config = btstack / suite.config_dir / "btstack_config.h"

    h = hashlib.sha256()
    _hash_files(h, [*btstack_sources, *ours, *OUR_HEADERS, test_cpp, config])
    for d in ("src", "platform/embedded", "platform/posix"):
        _hash_files(h, sorted((btstack / d).rglob("*.h")))
    h.update(repr((BTSTACK_FLAGS, CXX_FLAGS, OUR_FLAGS, cpp_flags, link_flags, defines)).encode())
    h.update(repr((suite.signed_write, suite.config_dir)).encode())
    tag = "nosign" if not suite.signed_write else "signed"
    adj = f"-adj{capacity_adjust}" if capacity_adjust else ""
    out = BUILD_DIR / f"{suite.name}-{tag}{adj}-{h.hexdigest()[:16]}" / "test"
    if out.exists():
        return out

    # Built in a private directory, then renamed: concurrent sessions may race.
    work = out.parent.with_name(f"{out.parent.name}.{os.getpid()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    includes = []
    cxx_extra: list[str] = []
    if not suite.signed_write:
        # btstack_config.h as the suite has it, without ENABLE_LE_SIGNED_WRITE.
        gen = work / "config"
        gen.mkdir(exist_ok=True)
        (gen / "btstack_config.h").write_text(
            "// Generated by test_btstack_suites.py: the suite's configuration,\n"
            "// without ENABLE_LE_SIGNED_WRITE.\n"
            f'#include "{config}"\n'
            "#undef ENABLE_LE_SIGNED_WRITE\n"
        )
        includes.append(f"-I{gen}")
        cxx_extra = ["-include", str(SHIM_DIR / "le_device_db_signed_write.h")]
    # Our shim headers first: they stand in for BTstack's TLV headers.
    includes += [f"-I{d}" for d in (SHIM_DIR, HERE, CORE_DIR)]
    includes += [f"-I{btstack / d}" for d in (suite.config_dir, "src", "platform/embedded")]
    includes.append(f"-I{btstack / 'platform/posix'}")

    jobs: list[tuple[list[str], Path]] = []
    for i, src in enumerate(btstack_sources):
        cmd = ["gcc", *BTSTACK_FLAGS, *defines, *includes, "-c", str(src)]
        jobs.append((cmd, work / f"b{i}.o"))
    for i, src in enumerate(ours):
        cmd = ["gcc", *OUR_FLAGS, *BTSTACK_FLAGS, *defines, *includes, "-c", str(src)]
        jobs.append((cmd, work / f"o{i}.o"))
    cxx = ["g++", *BTSTACK_FLAGS, *CXX_FLAGS, *defines, *cpp_flags, *cxx_extra, *includes]
    jobs.append(([*cxx, "-c", str(test_cpp)], work / "test.o"))

    def compile_one(job: tuple[list[str], Path]) -> None:
        cmd, obj = job
        r = subprocess.run([*cmd, "-o", str(obj)], capture_output=True, text=True, check=False)
        (obj.with_suffix(".log")).write_text(r.stdout + r.stderr)
        if r.returncode != 0:
            raise RuntimeError(f"compile failed: {' '.join(cmd)}\n{r.stderr}")

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(compile_one, jobs))
    objs = [str(obj) for _, obj in jobs]
    link = ["g++", "-fsanitize=address", *objs, *link_flags, "-o", str(work / out.name)]
    r = subprocess.run(link, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"link failed: {' '.join(link)}\n{r.stderr}")
    try:
        work.rename(out.parent)
    except OSError:  # another session built it first
        shutil.rmtree(work, ignore_errors=True)
    return out


# ---- Running --------------------------------------------------------------


@dataclass
class Result:
    ran: list[str]
    failed: list[str]
    output: str
    returncode: int


def list_tests(program: Path) -> list[str]:
    """Every "GROUP.Test" in the program (CppUTest's -ln)."""
    r = subprocess.run(
        [str(program), "-ln"], capture_output=True, text=True, check=True, cwd=program.parent
    )
    # The list is CppUTest's last line; main() may print before it.
    lines = r.stdout.strip().splitlines()
    return lines[-1].split() if lines else []


def run_tests(program: Path, tests: list[str]) -> Result:
    """Run the given "GROUP.Test"s: one process per group, so tests share it as in BTstack."""
    with tempfile.TemporaryDirectory(prefix="run-", dir=program.parent) as rundir:
        return _run_groups(program, tests, Path(rundir))


def _run_groups(program: Path, tests: list[str], rundir: Path) -> Result:
    # The flash shims' bond file.  (tlv_posix uses the path its test names.)
    env = {**os.environ, "BONDSTORE_TLV_FLASH_FILE": str(rundir / "bonds.bin")}
    groups: dict[str, list[str]] = {}
    for t in tests:
        g, n = t.split(".", 1)
        groups.setdefault(g, []).append(n)
    ran: list[str] = []
    failed: list[str] = []
    output = []
    rc = 0
    for group, names in groups.items():
        # CppUTest ORs its filters: strict group, and any of the strict names.
        cmd = [str(program), "-v", "-sg", group]
        for n in names:
            cmd += ["-sn", n]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=rundir, env=env)
        text = r.stdout + r.stderr
        output.append(f"$ {' '.join(cmd)}\n{text}")
        rc = rc or r.returncode
        ran += [f"{g}.{n}" for g, n in re.findall(r"^TEST\((\w+), (\w+)\)", text, re.M)]
        failed += [f"{g}.{n}" for g, n in re.findall(r"Failure in TEST\((\w+), (\w+)\)", text)]
    return Result(ran, sorted(set(failed)), "\n".join(output), rc)


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """Show line in the terminal even when output is captured."""
    with capsys.disabled():
        print(f"\n{line}")


@pytest.mark.parametrize("suite", SUITES, ids=[s.id for s in SUITES])
def test_suite(suite: Suite, btstack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every test of the suite that applies to a TLV store passes on ours."""
    program = build(suite, btstack)
    listed = list_tests(program)
    stale = sorted(set(suite.not_applicable) - set(listed))
    assert not stale, f"not-applicable tests no longer in {suite.test_dir}: {stale}"
    applicable = [t for t in listed if t not in suite.not_applicable]
    result = run_tests(program, applicable)
    passed = [t for t in result.ran if t not in result.failed]
    report(
        capsys,
        f"{suite.id}: {len(applicable)} tests, {len(passed)} passed, {len(result.failed)} failed"
        f" ({len(suite.not_applicable)} not applicable)",
    )
    assert result.returncode == 0 and not result.failed, result.output
    assert sorted(result.ran) == sorted(applicable), result.output


@pytest.mark.parametrize("suite", SUITES[2:], ids=[s.id for s in SUITES[2:]])
def test_capacity_is_tight(suite: Suite, btstack: Path) -> None:
    """ReplaceOldest needs every byte of the configured buffer: one less and it fails.

    So the buffer is sized by the entry BTstack really stores (60 or 100 bytes),
    and NVM_NUM_DEVICE_DB_ENTRIES bonds fit next to the rest of the table.
    """
    # The table's non-device-DB records are unused by the suite: take them away too.
    o = bondfile.C["RECORD_OVERHEAD"]
    others = 20 * (o + 8) + 2 * (o + 16) + (o + 6)
    program = build(suite, btstack, capacity_adjust=-others - 1)
    result = run_tests(program, ["LE_DEVICE_DB_TLV.ReplaceOldest"])
    assert result.failed == ["LE_DEVICE_DB_TLV.ReplaceOldest"], result.output
    program = build(suite, btstack, capacity_adjust=-others)
    result = run_tests(program, ["LE_DEVICE_DB_TLV.ReplaceOldest"])
    assert result.returncode == 0 and not result.failed, result.output
