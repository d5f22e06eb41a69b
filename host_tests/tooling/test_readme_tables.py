"""The README's result tables say what expected.toml says.

The integration suite checks every cell against expected.toml; this checks
the README's copies of those tables against it (every row, every stack pair,
the † that marks our tests, and that a footnote letter names one cause), so
that neither can change without the other.
"""

from __future__ import annotations

import re

import pytest

from mpoverlay import REPO_ROOT, aioble, expectations, matrix
from mpoverlay.multitest import EXCLUDED, STACK_PAIRS

README = (REPO_ROOT / "README.md").read_text()
PAIRS = ["/".join(pair) for pair in STACK_PAIRS]
OURS = {
    "multi_bluetooth": {p.name for p in (REPO_ROOT / "tests" / "multi_bluetooth").glob("*.py")},
    "aioble": {p.name for p in (REPO_ROOT / aioble.MULTITESTS_DIR).glob("*.py")},
}
# The heading each table follows.
SECTIONS = {"multi_bluetooth": "## Results", "aioble": "### aioble (`make aioble`)"}
_FOOTNOTE_RE = re.compile(r"^(?P<outcome>\S+)(?: \[(?P<note>\w+)\])?$")


def table_after(heading: str) -> list[list[str]]:
    """The rows (cells as text) of the first Markdown table after ``heading``."""
    text = README[README.index(heading + "\n") :]
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if not set(line) <= set("|- "):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def expected_cell(table: str, pair: str, test: str) -> str:
    if table == "multi_bluetooth" and test in EXCLUDED:
        return "excluded"
    return expectations.expect(table, pair, test).outcome


@pytest.mark.parametrize("table", ["multi_bluetooth", "aioble"])
def test_readme_table_matches_the_expectations(table: str) -> None:
    header, *rows = table_after(SECTIONS[table])
    assert header == ["test", *PAIRS]
    section = expectations.load()[table]
    assert sorted(r[0].removesuffix(" †") for r in rows) == sorted(
        section["upstream_tests"] + sorted(OURS[table])
    )
    letters: dict[str, str] = {}
    for name, *cells in rows:
        test = name.removesuffix(" †")
        assert name.endswith(" †") == (test in OURS[table]), f"† on {name}"
        for pair, cell in zip(PAIRS, cells, strict=True):
            m = _FOOTNOTE_RE.match(cell)
            assert m, f"{test} {pair}: {cell!r}"
            assert m["outcome"] == expected_cell(table, pair, test), f"{test} {pair}"
            key = expectations.expect(table, pair, test).cause_key
            if m["note"]:
                assert letters.setdefault(m["note"], key) == key, f"[{m['note']}] names two causes"
            else:
                assert table == "multi_bluetooth" or not key, f"{test} {pair}: no footnote"
    assert len(set(letters.values())) == len(letters), "one cause under two letters"


def test_readme_matrix_matches_the_expectations() -> None:
    header, *rows = table_after("### Bonding matrix (`make matrix`)")
    short = {"peripheral": "periph."}
    names = [f"{c.pairing}, {short.get(c.restart, c.restart)}" for c in matrix.CELLS]
    assert header == ["peripheral/central", *names]
    public = None
    seen = set()
    for name, *cells in rows:
        if name.startswith("**"):
            public = name == "**public addresses**"
            continue
        assert public is not None
        pair = tuple(name.split("/"))
        seen.add((pair, public))
        for cell, text in zip(matrix.CELLS, cells, strict=True):
            assert text.split(" [")[0] == matrix.expected_outcome(pair, cell, public), (
                f"{name} {cell.name}, public={public}"
            )
    assert seen == {(pair, public) for pair in matrix.PAIRS for public in (True, False)}
