"""What each cell of the integration suite's tables is expected to give.

The one source is host_tests/integration/expected.toml: a section per table
(``multi_bluetooth``, ``aioble``, ``matrix``, ``bumble_peer``) and the causes
they share.  A cell not listed must pass; a listed one names its outcome, a
cause and, when it may fail, the signature its output must show.  The
integration tests, ``make multitest`` / ``make matrix`` / ``make aioble`` and
the series' suite verdict all judge cells with :func:`differences`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from . import REPO_ROOT

EXPECTED_TOML = REPO_ROOT / "host_tests" / "integration" / "expected.toml"
TABLES = ("multi_bluetooth", "aioble", "matrix", "bumble_peer")
# Outcomes a table may name; "either" is a cell whose outcome depends on host
# timing that the radio does not control.
LISTED_OUTCOMES = ("skip", "fail", "either")
# Upstream tests that cannot run here at all (see mpoverlay.multitest.EXCLUDED).
NOT_RUN = ("excluded",)
_TEST_OUTPUT_RE = re.compile(r"### TEST ###\n(.*?)(?:### TRUTH ###|\Z)", re.S)


@dataclass(frozen=True)
class Expectation:
    outcome: str  # "pass" for a cell the table does not list
    cause_key: str = ""
    cause: str = ""
    signature: tuple[str, ...] = ()

    def admits(self, outcome: str) -> bool:
        if self.outcome == "either":
            return outcome in ("pass", "fail")
        return outcome == self.outcome


@cache
def load(path: Path = EXPECTED_TOML) -> dict:
    return tomllib.loads(path.read_text())


def cells_of(table: str, column: str) -> dict[str, dict]:
    """The listed cells of one column (a stack pair, or a stack for the Bumble peer)."""
    section = load()[table]
    columns = section["stacks"] if table == "bumble_peer" else section["pairs"]
    return columns.get(column) or {}


def expect(table: str, column: str, test: str) -> Expectation:
    entry = cells_of(table, column).get(test)
    if entry is None:
        return Expectation("pass")
    key = entry["cause"]
    return Expectation(
        entry["outcome"], key, load()["causes"][key], tuple(entry.get("signature", ()))
    )


def test_output(output: str) -> str:
    """What the instances printed (run-multitests.py's ### TEST ### part),
    without the expected output and the diff that follow it."""
    m = _TEST_OUTPUT_RE.search(output)
    return m.group(1) if m else output


def missing_signature(expectation: Expectation, output: str) -> list[str]:
    """The signature's patterns that the instances' output does not match."""
    shown = test_output(output)
    return [pattern for pattern in expectation.signature if not re.search(pattern, shown)]


def difference(table: str, column: str, test: str, outcome: str, output: str = "") -> str:
    """Why a cell's result is not what the table says ("" when it is)."""
    if outcome in NOT_RUN:
        return ""
    want = expect(table, column, test)
    if not want.admits(outcome):
        return f"{column} {test}: {outcome}, expected {want.outcome}"
    if outcome == "fail" and (missing := missing_signature(want, output)):
        return f"{column} {test}: failed, but not as pinned ({want.cause_key}): {missing}"
    return ""


def differences(table: str, cells: Iterable[tuple[str, str, str, str]]) -> list[str]:
    """The cells ``(column, test, outcome, output)`` that differ from the table."""
    return [d for cell in cells if (d := difference(table, *cell))]


def shown(table: str, column: str, test: str, outcome: str) -> str:
    """A cell as the tables print it: an "either" cell that gave one of its
    outcomes reads "either", so that two runs print the same table."""
    want = expect(table, column, test)
    return "either" if want.outcome == "either" and want.admits(outcome) else outcome


def problems(columns: dict[str, Iterable[str]]) -> list[str]:
    """What is wrong with the file itself: a table whose columns are not
    ``columns[table]`` (the stack pairs the tooling runs), an unknown outcome
    or cause, a cause no cell names, a cell that may fail without a signature."""
    data = load()
    found = []
    used = set()
    for table in TABLES:
        section = data.get(table)
        if section is None:
            found.append(f"no [{table}] table")
            continue
        listed = section.get("stacks" if table == "bumble_peer" else "pairs", {})
        if sorted(listed) != sorted(columns[table]):
            found.append(f"[{table}] names {sorted(listed)}, runs {sorted(columns[table])}")
        for column, entries in listed.items():
            for test, entry in (entries or {}).items():
                where = f"[{table}] {column} {test}"
                if entry.get("outcome") not in LISTED_OUTCOMES:
                    found.append(f"{where}: outcome {entry.get('outcome')!r}")
                if entry.get("cause") not in data.get("causes", {}):
                    found.append(f"{where}: unknown cause {entry.get('cause')!r}")
                used.add(entry.get("cause"))
                if entry.get("outcome") in ("fail", "either") and not entry.get("signature"):
                    found.append(f"{where}: a cell that may fail needs a signature")
    found += [f"cause {key!r} is named by no cell" for key in set(data["causes"]) - used]
    return found
