"""Run micropython-lib's aioble multitests between unix instances over the radio.

aioble is pure Python and is not frozen into the firmware: each instance
imports it from the build tree's micropython-lib, through MICROPYPATH.
run-multitests.py starts an instance in its test file's directory
(``aioble/multitests``), so the path is given absolute.  Our own aioble
multitests live in the overlay at the same upstream path and so sit next to
upstream's in the build tree.  Each instance runs in a directory of its own,
as a board has its own filesystem: aioble keeps its secrets in a file named
relative to the working directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from .multitest import STACK_PAIRS, Result, markdown_table, outcome_summary, run_suite

# micropython-lib's aioble (its package is the ``aioble`` directory inside).
AIOBLE_DIR = Path("lib/micropython-lib/micropython/bluetooth/aioble")
MULTITESTS_DIR = AIOBLE_DIR / "multitests"
PAIRS = STACK_PAIRS


def micropypath(tree: Path) -> str:
    """MICROPYPATH for an instance: frozen modules (asyncio), then aioble."""
    return f".frozen:{(tree / AIOBLE_DIR).resolve()}"


def aioble_tests(tree: Path) -> list[Path]:
    """The aioble multitests in the build tree (upstream's and ours)."""
    return sorted((tree / MULTITESTS_DIR).glob("*.py"))


class UnknownTestError(ValueError):
    """A test named on the command line is not among the aioble multitests."""


def select_tests(tree: Path, names: Iterable[str]) -> list[Path]:
    """Named tests (all of them if none is named); an unknown name is an error."""
    tests = aioble_tests(tree)
    names = list(names)
    if not names:
        return tests
    by_name = {t.name: t for t in tests}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UnknownTestError(f"no such aioble multitest: {', '.join(unknown)}")
    return [by_name[n] for n in names]


Cells = dict[tuple[str, str], Result]  # {(pair "a/b", test name): result}
RunSuite = Callable[..., list[Result]]


def run(
    tree: Path,
    tests: list[Path],
    pairs: Iterable[tuple[str, str]],
    verbose: bool = False,
    trace: Path | None = None,
    suite: RunSuite = run_suite,
    public_addresses: bool = False,
) -> Cells:
    """Run every test on every stack pair, each on a fresh radio (whose
    controllers have public addresses with ``public_addresses``)."""
    cells: Cells = {}
    for stacks in pairs:
        pair = "/".join(stacks)
        print(f"== aioble multitests on {pair}", flush=True)
        results = suite(
            tree,
            tests,
            stacks,
            trace,
            verbose,
            micropypath=micropypath(tree),
            own_directory=True,
            public_addresses=public_addresses,
        )
        for r in results:
            cells[pair, r.test] = r
    return cells


def all_passed(cells: Cells) -> bool:
    """Whether no cell failed (a skip, e.g. for a missing feature, is not a failure)."""
    return all(r.outcome in ("pass", "skip", "excluded") for r in cells.values())


def format_table(cells: Cells, notes: dict[tuple[str, str], str] | None = None) -> str:
    """A Markdown table, a row per test and a column per pair; a cell that
    did not pass gets a footnote when ``notes`` names its cause."""
    notes = notes or {}
    pairs = list(dict.fromkeys(p for p, _ in cells))
    tests = sorted({t for _, t in cells})
    causes: dict[str, int] = {}
    rows = []
    for test in tests:
        row = [test]
        for pair in pairs:
            r = cells.get((pair, test))
            text = r.outcome if r else "-"
            why = notes.get((pair, test), "") if r and r.outcome != "pass" else ""
            if why:
                text += f" [{causes.setdefault(why, len(causes) + 1)}]"
            row.append(text)
        rows.append(row)
    lines = markdown_table([["test", *pairs], *rows])
    lines += [f"[{n}] {why}" for why, n in causes.items()]
    lines.append(outcome_summary(r.outcome for r in cells.values()))
    return "\n".join(lines)
