"""The bond store shares littlefs with an application that logs, rp2-style.

Scheduled work runs inside every block-device call (flashdev servicing, as
rp2_flash.c does), the application appends to /flash/log.txt every 5 ms, and
ten peers pair; then the power is cut.  Required: no store write nested in
another filesystem call, the log intact before and after the cut, every bond
re-encrypting after it, no traceback.  See flashdev_concurrency.py.
"""

from __future__ import annotations

from pathlib import Path

import flashdev_concurrency
import pytest
from integration_support import FLASHDEV_REPORTS, NO_TREE_REASON, upstream_available

pytestmark = pytest.mark.skipif(not upstream_available(), reason=NO_TREE_REASON)


def test_store_writes_do_not_nest_in_application_fs_calls(
    built_tree: Path, tmp_path: Path
) -> None:
    result = flashdev_concurrency.run(tmp_path)
    FLASHDEV_REPORTS.append(result.summary())
    print(result.summary())
    assert result.paired == result.pairings, result.pair_errors
    assert result.nested_writes == 0, result.nested[:10]
    for log in (result.log_before, result.log_after):
        assert log is not None and log.lines > 0 and log.first_bad == -1, log
    assert result.log_lines_kept, (result.log_before, result.log_after)
    assert result.reencrypted == result.pairings
    # Events came inside device calls (the test exercises the deferral), and
    # every bond was durable by the time the application next ran.
    assert result.irqs_in_calls > 0
    assert result.durable_when_reported == result.pairings
    assert result.tracebacks == []
