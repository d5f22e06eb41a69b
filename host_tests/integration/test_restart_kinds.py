"""The runner tells a clean restart from a kill (patch 0005).

A test asks for a clean restart with ``multitest.expect_reboot(resume,
delay_ms)`` and then exits by itself (a soft reset); ``delay_ms`` 0 asks for a
kill (a power cut).  An instance that had to be killed after claiming a clean
restart must not pass as if it had exited.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_support import NO_TREE_REASON, upstream_available

from mpoverlay.multitest import run_suite

TEST = """
import sys, time

def instance0():
    multitest.next()
    multitest.expect_reboot("instance0_after", 1000)
    {end}

def instance0_after():
    print("resumed")

def instance1():
    multitest.next()
    print("up")
"""
EXPECTED = (
    "--- instance0 ---\nWAIT_FOR_REBOOT instance0_after 1000\nresumed\n--- instance1 ---\nup\n"
)


def write_test(tmp_path: Path, end: str) -> Path:
    test = tmp_path / "restart_kind.py"
    test.write_text(TEST.format(end=end))
    test.with_name(test.name + ".exp").write_text(EXPECTED)
    return test


@pytest.mark.skipif(not upstream_available(), reason=NO_TREE_REASON)
def test_a_clean_restart_passes(built_tree: Path, tmp_path: Path) -> None:
    [result] = run_suite(built_tree, [write_test(tmp_path, "sys.exit()")], ("btstack", "btstack"))
    assert result.outcome == "pass", result.output


@pytest.mark.skipif(not upstream_available(), reason=NO_TREE_REASON)
def test_a_restart_that_had_to_be_killed_is_reported(built_tree: Path, tmp_path: Path) -> None:
    hang = "while True:\n        time.sleep_ms(10)"
    [result] = run_suite(built_tree, [write_test(tmp_path, hang)], ("btstack", "btstack"))
    assert result.outcome == "fail"
    assert "WAIT_FOR_REBOOT instance0_after 1000 (no clean exit: killed)" in result.output
