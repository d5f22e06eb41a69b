"""What each cell of the multitest and aioble tables is expected to give.

The one source is host_tests/integration/expected.toml (multi_bluetooth) and
expected_aioble.toml (aioble): a cell not listed must pass; a listed one
names its outcome and cause.  The integration tests check every cell against
them, and ``make multitest`` / ``make aioble`` exit non-zero when a cell
differs (not merely when one fails as expected).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from . import REPO_ROOT

TABLES = {
    "multi_bluetooth": REPO_ROOT / "host_tests" / "integration" / "expected.toml",
    "aioble": REPO_ROOT / "host_tests" / "integration" / "expected_aioble.toml",
}
# Upstream tests that cannot run here at all (see mpoverlay.multitest.EXCLUDED).
NOT_RUN = ("excluded",)


@cache
def load(table: str, path: Path | None = None) -> dict:
    return tomllib.loads((path or TABLES[table]).read_text())


def expected(table: str, pair: str, test: str) -> str:
    entry = load(table).get("pairs", {}).get(pair, {}).get(test)
    return entry["outcome"] if entry else "pass"


def unexpected(table: str, cells: Iterable[tuple[str, str, str]]) -> list[str]:
    """The cells ``(pair, test, outcome)`` that differ from the table, as text."""
    return [
        f"{pair} {test}: {outcome}, expected {expected(table, pair, test)}"
        for pair, test, outcome in cells
        if outcome not in NOT_RUN and outcome != expected(table, pair, test)
    ]
