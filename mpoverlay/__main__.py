"""Command line: ``python -m mpoverlay {prepare,build,multitest,demo,rp2,size}``.

The upstream tree comes from ``MICROPY_DIR`` (or ``--micropy-dir``); without
one, the pinned commits are fetched into ``build/upstream`` (needs network).
rp2 builds also read ``MBEDTLS_DIR`` and ``PICOTOOL_FETCH_FROM_GIT_PATH``
(see ``mpoverlay.rp2``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import (
    BUILD_DIR,
    REPO_ROOT,
    aioble,
    demo,
    expectations,
    matrix,
    nimble_size,
    rp2,
    series,
    size,
    tree,
)
from .build import UNIX_VARIANTS, BuildError, build_unix
from .lock import LockError, load_lock
from .multitest import format_table, run_suite, suite_tests
from .overlay import OverlayError
from .radio import RadioError
from .upstream import UpstreamError


def prepared_tree(args: argparse.Namespace) -> Path:
    return tree.prepared_tree(args.micropy_dir, allow_fetch=not args.offline)


def cmd_prepare(args: argparse.Namespace) -> None:
    prepared_tree(args)


def cmd_build(args: argparse.Namespace) -> None:
    tree = prepared_tree(args)
    for variant in args.variant or UNIX_VARIANTS:
        built = build_unix(tree, variant)
        print(f"built: {built.what} -> {built.path} ({built.seconds:.1f} s)")


def cmd_rp2(args: argparse.Namespace) -> int:
    inputs = rp2.Rp2Inputs.from_env(os.environ)
    built_tree = tree.prepared_tree(
        args.micropy_dir, not args.offline, ("rp2",), inputs.substitutes()
    )
    ok = True
    for board in args.board or [rp2.BOARDS[0]]:
        built = rp2.build_rp2(built_tree, rp2.Rp2Config(board), inputs)
        uf2, elf = rp2.publish(built.path.parent, board)
        print(f"built: {built.what} -> {uf2} ({built.seconds:.1f} s)")
        print(f"built: {built.what} -> {elf}")
        for what, present in rp2.features(rp2.symbol_names(elf)).items():
            ok = ok and present
            print(f"  {what}: {'yes' if present else 'NO'}")
        picotool = rp2.find_picotool(inputs)
        if picotool is None:
            print("  picotool not found: cannot check the uf2", file=sys.stderr)
            ok = False
        else:
            print(f"$ picotool info -a {uf2.name}")
            print(rp2.picotool_info(picotool, uf2).rstrip())
    return 0 if ok else 1


def cmd_nimble_size(args: argparse.Namespace) -> int:
    print(nimble_size.run())
    return 0


def cmd_size(args: argparse.Namespace) -> int:
    inputs = rp2.Rp2Inputs.from_env(os.environ)
    boards = args.board or list(rp2.BOARDS)
    print(size.run(args.micropy_dir, not args.offline, boards, inputs))
    return 0


def _stacks(text: str) -> tuple[str, ...]:
    stacks = tuple(text.split("/"))
    if len(stacks) != 2 or not set(stacks) <= set(UNIX_VARIANTS):
        raise argparse.ArgumentTypeError(f"expected e.g. btstack/nimble, got {text!r}")
    return stacks


def cmd_multitest(args: argparse.Namespace) -> int:
    tree = prepared_tree(args)
    for variant in sorted(set(args.stacks)):
        build_unix(tree, variant)
    tests = [tree / "tests" / "multi_bluetooth" / t for t in args.tests] or suite_tests(tree)
    results = run_suite(
        tree, tests, args.stacks, args.trace, args.verbose, getattr(args, "show_output", False)
    )
    print(format_table(args.stacks, results))
    pair = "/".join(args.stacks)
    differ = expectations.differences(
        "multi_bluetooth", ((pair, r.test, r.outcome, r.output) for r in results)
    )
    for line in differ:
        print(f"not as expected: {line}")
    return 1 if differ else 0


def cmd_aioble(args: argparse.Namespace) -> int:
    tree = prepared_tree(args)
    pairs = args.stacks or list(aioble.PAIRS)
    for variant in sorted({stack for pair in pairs for stack in pair}):
        build_unix(tree, variant)
    try:
        tests = aioble.select_tests(tree, args.tests)
    except aioble.UnknownTestError as e:
        print(f"mpoverlay: error: {e}", file=sys.stderr)
        return 2
    cells = aioble.run(tree, tests, pairs, args.verbose, args.trace)
    print(aioble.format_table(cells))
    differ = expectations.differences(
        "aioble", ((p, t, r.outcome, r.output) for (p, t), r in cells.items())
    )
    for line in differ:
        print(f"not as expected: {line}")
    return 1 if differ else 0


def cmd_matrix(args: argparse.Namespace) -> int:
    tree = prepared_tree(args)
    for variant in UNIX_VARIANTS:
        build_unix(tree, variant)
    test_dir = tree / "tests" / "multi_bluetooth"
    # Outside build/tree: preparing the tree again (another rig) must not
    # delete the cells while they run.
    files = matrix.write_cells(test_dir, BUILD_DIR / "matrix")
    ok = True
    for addresses in args.addresses or matrix.ADDRESSES:
        public = addresses == "public"

        def run_pair(pair: tuple[str, str], tests: list[Path], public: bool = public) -> list:
            kind = "public" if public else "random"
            print(f"== {'/'.join(pair)}, {kind} addresses", flush=True)
            return run_suite(tree, tests, pair, args.trace, args.verbose, public_addresses=public)

        outcomes = matrix.run(files, run_pair)
        print(matrix.format_matrix(outcomes, public), flush=True)
        ok = ok and all(
            matrix.expectation(pair, cell, public).admits(o)
            for (pair, cell), o in outcomes.items()
        )
    return 0 if ok else 1


def cmd_series(args: argparse.Namespace) -> int:
    base = args.base or (Path(args.micropy_dir) if args.micropy_dir else None)
    if base is None or not base.is_dir():
        raise series.SeriesError("give the upstream tree to export against: --base DIR")
    lock = load_lock(REPO_ROOT / "upstream.lock")
    work = series.SERIES_DIR / (args.name or base.resolve().name)
    report = series.export(base.resolve(), work, lock, args.author, build_each=not args.no_build)
    if args.suite:
        repo = work / "tree"
        binary = repo / "ports" / "unix" / f"build-{series.BUILD_VARIANT}" / "micropython"
        stacks = (series.BUILD_VARIANT, series.BUILD_VARIANT)
        results = run_suite(repo, suite_tests(repo), stacks, binaries={stacks[0]: binary})
        report.suite = series.suite_verdict("/".join(stacks), results)
    text = series.format_report(report)
    print(text)
    (work / "report.md").write_text(text + "\n")
    return 0 if report.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    cmd_build(argparse.Namespace(**vars(args), variant=None))
    return demo.run(prepared_tree(args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mpoverlay", description=__doc__)
    parser.add_argument(
        "--micropy-dir",
        default=os.environ.get("MICROPY_DIR") or None,
        help="upstream MicroPython tree to build on (default: $MICROPY_DIR)",
    )
    parser.add_argument(
        "--offline", action="store_true", help="never fetch upstream; fail if no tree is available"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="prepare build/tree: upstream + overlay")
    p = sub.add_parser("build", help="build the unix firmware")
    p.add_argument("--variant", action="append", choices=UNIX_VARIANTS)
    p = sub.add_parser("multitest", help="run multi_bluetooth tests over the virtual radio")
    p.add_argument(
        "--stacks",
        type=_stacks,
        default=("btstack", "btstack"),
        help="instance0/instance1 stacks, e.g. btstack/nimble",
    )
    p.add_argument("--trace", type=Path, help="write btsnoop HCI traces into this directory")
    p.add_argument("-v", "--verbose", action="store_true", help="show output of failed tests")
    p.add_argument("tests", nargs="*", help="test file names (default: the whole directory)")
    p = sub.add_parser("aioble", help="run micropython-lib's aioble multitests over the radio")
    p.add_argument(
        "--stacks",
        type=_stacks,
        action="append",
        help="instance0/instance1 stacks, e.g. btstack/btstack (repeatable; default: all pairs)",
    )
    p.add_argument("--trace", type=Path, help="write btsnoop HCI traces into this directory")
    p.add_argument("-v", "--verbose", action="store_true", help="show output of failed tests")
    p.add_argument("tests", nargs="*", help="test file names (default: all aioble multitests)")
    p = sub.add_parser("matrix", help="bonding matrix: stack pairs x legacy/SC x restart side")
    p.add_argument("--trace", type=Path, help="write btsnoop HCI traces into this directory")
    p.add_argument("-v", "--verbose", action="store_true", help="show output of failed tests")
    p.add_argument(
        "--addresses",
        action="append",
        choices=matrix.ADDRESSES,
        help="controllers with a public address, or none (devices use random static"
        " addresses); default: both",
    )
    sub.add_parser(
        "demo", help="build, then bond and restart over the radio, told step by step (both stacks)"
    )
    p = sub.add_parser("rp2", help="build rp2 firmware (Pico W / Pico 2 W) into build/rp2-<BOARD>")
    p.add_argument("--board", action="append", choices=rp2.BOARDS, help="default: RPI_PICO_W")
    p = sub.add_parser("size", help="benchmark: rp2 firmware size, upstream vs overlay vs store")
    p.add_argument("--board", action="append", choices=rp2.BOARDS, help="default: all")
    sub.add_parser(
        "nimble-size", help="benchmark: the NimBLE store's code (unix objects, rv32 cross-compile)"
    )
    p = sub.add_parser(
        "series", help="export patches/series as git commits on an upstream tree and check them"
    )
    p.add_argument("--base", type=Path, help="upstream tree (default: $MICROPY_DIR)")
    p.add_argument("--name", help="work directory build/series/NAME (default: the tree's name)")
    p.add_argument("--author", help="'Name <email>' to author and sign off every commit")
    p.add_argument("--no-build", action="store_true", help="do not build after each step")
    p.add_argument(
        "--suite", action="store_true", help="run multi_bluetooth (btstack/btstack) at the end"
    )
    args = parser.parse_args(argv)
    handler = {
        "prepare": cmd_prepare,
        "build": cmd_build,
        "multitest": cmd_multitest,
        "aioble": cmd_aioble,
        "matrix": cmd_matrix,
        "demo": cmd_demo,
        "rp2": cmd_rp2,
        "size": cmd_size,
        "nimble-size": cmd_nimble_size,
        "series": cmd_series,
    }[args.command]
    try:
        return handler(args) or 0
    except (
        LockError,
        UpstreamError,
        OverlayError,
        BuildError,
        RadioError,
        series.SeriesError,
    ) as e:
        print(f"mpoverlay: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
