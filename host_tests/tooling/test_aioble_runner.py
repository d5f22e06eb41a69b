"""The aioble multitest runner: instance environment, test selection, table."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mpoverlay import REPO_ROOT, aioble
from mpoverlay.multitest import Result, instance_arg, write_launcher
from mpoverlay.overlay import Overlay

OUR_TEST = "ble_pair_bond_persist.py"


def fake_tree(root: Path, tests: list[str]) -> Path:
    package = root / aioble.AIOBLE_DIR / "aioble"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    multitests = root / aioble.MULTITESTS_DIR
    multitests.mkdir()
    for name in tests:
        (multitests / name).write_text("")
        (multitests / (name + ".exp")).write_text("")
    return root


def result(test: str, outcome: str) -> Result:
    return Result(test, outcome, 1.0, f"output of {test}")


# -- the instances' environment ------------------------------------------------


def test_micropypath_has_frozen_modules_then_the_directory_holding_aioble(tmp_path: Path):
    tree = fake_tree(tmp_path / "tree", [])
    frozen, aioble_parent = aioble.micropypath(tree).split(":")
    assert frozen == ".frozen"  # asyncio is frozen into our unix variants
    # Absolute: run-multitests.py starts instances in another directory.
    assert Path(aioble_parent).is_absolute()
    assert (Path(aioble_parent) / "aioble" / "__init__.py").is_file()


def test_micropypath_of_a_relative_tree_is_absolute(tmp_path: Path, monkeypatch):
    fake_tree(tmp_path / "tree", [])
    monkeypatch.chdir(tmp_path)
    _, aioble_parent = aioble.micropypath(Path("tree")).split(":")
    assert Path(aioble_parent) == (tmp_path / "tree" / aioble.AIOBLE_DIR).resolve()


def run_multitests_env(arg: str) -> tuple[str, dict[str, str]]:
    """How run-multitests.py reads a -t argument (PyInstanceSubProcess)."""
    cmd, *env = arg.split(",")
    return cmd, {n: v for n, v in (i.split("=") for i in env)}


def test_instance_arg_carries_micropypath_and_home(tmp_path: Path):
    arg = instance_arg(Path("/fw/micropython"), "/dev/pts/7", tmp_path, ".frozen:/t/aioble")
    cmd, env = run_multitests_env(arg)
    assert cmd == "exec:/fw/micropython"
    assert env == {
        "MICROPYBTUART": "/dev/pts/7",
        "MICROPYPATH": ".frozen:/t/aioble",
        "HOME": str(tmp_path),
    }


@pytest.mark.parametrize(
    ("binary", "micropypath"),
    [("/a,b/micropython", ".frozen"), ("/fw/micropython", ".frozen:/x,y"), ("/fw/mp", "a=b")],
)
def test_instance_arg_refuses_what_run_multitests_would_split(binary: str, micropypath: str):
    with pytest.raises(ValueError, match="run-multitests.py cannot"):
        instance_arg(Path(binary), "/dev/pts/7", Path("/home/i0"), micropypath)


def fake_binary(path: Path) -> Path:
    """Prints where it runs and what it was given, like an instance would."""
    path.write_text('#!/bin/sh\npwd\nfor a in "$@"; do echo "arg:$a"; done\n')
    path.chmod(0o755)
    return path


def test_launcher_runs_the_binary_in_home_with_its_arguments(tmp_path: Path):
    home = tmp_path / "instance0"
    home.mkdir()
    test_dir = tmp_path / "multitests"  # where run-multitests.py starts it
    test_dir.mkdir()
    launcher = write_launcher(tmp_path / "instance0.sh", fake_binary(tmp_path / "micropython"))
    script = "import sys\nprint('a, b')\n"
    out = subprocess.run(
        [str(launcher), "-c", script],
        cwd=test_dir,
        env={"HOME": str(home), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.splitlines()
    assert Path(lines[0]).resolve() == home.resolve()
    assert out.split("\n", 1)[1] == f"arg:-c\narg:{script}\n"


def test_launcher_quotes_a_binary_path_with_spaces(tmp_path: Path):
    binary_dir = tmp_path / "my firmware $HOME"
    binary_dir.mkdir()
    launcher = write_launcher(tmp_path / "i.sh", fake_binary(binary_dir / "micropython"))
    out = subprocess.run(
        [str(launcher), "x"],
        env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.splitlines()[1:] == ["arg:x"]


def test_launcher_does_not_run_the_binary_without_its_home(tmp_path: Path):
    launcher = write_launcher(tmp_path / "i.sh", fake_binary(tmp_path / "micropython"))
    proc = subprocess.run(
        [str(launcher)],
        env={"HOME": str(tmp_path / "missing"), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "arg:" not in proc.stdout and str(tmp_path) not in proc.stdout


# -- which tests ----------------------------------------------------------------


def test_all_tests_sorted_and_named_ones_in_the_given_order(tmp_path: Path):
    tree = fake_tree(tmp_path / "tree", ["ble_notify.py", "ble_characteristic.py", OUR_TEST])
    assert [t.name for t in aioble.select_tests(tree, [])] == [
        "ble_characteristic.py",
        "ble_notify.py",
        OUR_TEST,
    ]
    chosen = aioble.select_tests(tree, [OUR_TEST, "ble_notify.py"])
    assert chosen == [tree / aioble.MULTITESTS_DIR / n for n in (OUR_TEST, "ble_notify.py")]


def test_an_unknown_test_name_is_an_error_naming_it(tmp_path: Path):
    tree = fake_tree(tmp_path / "tree", ["ble_notify.py"])
    with pytest.raises(aioble.UnknownTestError, match="ble_nope.py"):
        aioble.select_tests(tree, ["ble_notify.py", "ble_nope.py"])


def test_our_multitest_is_an_overlay_file_of_the_aioble_patch():
    rel = aioble.MULTITESTS_DIR / OUR_TEST
    overlay = Overlay(REPO_ROOT)
    assert {rel, rel.with_name(OUR_TEST + ".exp")} <= set(overlay.files())
    [entry] = [e for e in overlay.series_entries() if rel in e.files]
    assert entry.patch.name.startswith("0019-aioble-security-")
    assert rel.with_name(OUR_TEST + ".exp") in entry.files


# -- running and reporting -------------------------------------------------------


def test_run_gives_each_pair_the_aioble_environment(tmp_path: Path):
    tree = fake_tree(tmp_path / "tree", ["ble_notify.py", OUR_TEST])
    tests = aioble.select_tests(tree, [])
    calls = []

    def suite(tree_arg, tests_arg, stacks, trace, verbose, **kwargs):
        calls.append((tree_arg, tests_arg, stacks, trace, verbose, kwargs))
        outcome = "fail" if stacks == ("nimble", "btstack") else "pass"
        return [result(t.name, outcome) for t in tests_arg]

    pairs = [("btstack", "btstack"), ("nimble", "btstack")]
    cells = aioble.run(tree, tests, pairs, verbose=True, suite=suite)
    assert [c[2] for c in calls] == pairs
    for tree_arg, tests_arg, _, trace, verbose, kwargs in calls:
        assert (tree_arg, tests_arg, trace, verbose) == (tree, tests, None, True)
        assert kwargs == {
            "micropypath": aioble.micropypath(tree),
            "own_directory": True,
            "public_addresses": False,
        }
    assert {k: r.outcome for k, r in cells.items()} == {
        ("btstack/btstack", "ble_notify.py"): "pass",
        ("btstack/btstack", OUR_TEST): "pass",
        ("nimble/btstack", "ble_notify.py"): "fail",
        ("nimble/btstack", OUR_TEST): "fail",
    }


def test_run_passes_public_addresses_on(tmp_path: Path):
    tree = fake_tree(tmp_path / "tree", ["ble_notify.py"])
    seen = []

    def suite(*args, **kwargs):
        seen.append(kwargs["public_addresses"])
        return [result("ble_notify.py", "pass")]

    aioble.run(tree, aioble.select_tests(tree, []), [("nimble", "nimble")], suite=suite)
    aioble.run(
        tree,
        aioble.select_tests(tree, []),
        [("nimble", "nimble")],
        suite=suite,
        public_addresses=True,
    )
    assert seen == [False, True]


def test_default_pairs_cover_each_stack_in_each_role():
    assert set(aioble.PAIRS) == {
        (a, b) for a in ("btstack", "nimble") for b in ("btstack", "nimble")
    }


def test_table_has_a_row_per_test_a_column_per_pair_and_numbered_causes():
    cells = {
        ("btstack/btstack", "perf_l2cap.py"): result("perf_l2cap.py", "fail"),
        ("btstack/btstack", "ble_shutdown.py"): result("ble_shutdown.py", "fail"),
        ("btstack/btstack", "ble_notify.py"): result("ble_notify.py", "pass"),
        ("nimble/nimble", "perf_l2cap.py"): result("perf_l2cap.py", "pass"),
        ("nimble/nimble", "ble_notify.py"): result("ble_notify.py", "timeout"),
    }
    no_l2cap = "no L2CAP channels on BTstack"
    notes = {
        ("btstack/btstack", "perf_l2cap.py"): no_l2cap,
        ("btstack/btstack", "ble_shutdown.py"): no_l2cap,
        ("nimble/nimble", "perf_l2cap.py"): "not shown: the cell passed",
    }
    lines = aioble.format_table(cells, notes).splitlines()
    assert lines[0].split("|")[1:-1] == [
        " test            ",
        " btstack/btstack ",
        " nimble/nimble ",
    ]
    rows = {
        ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]] for ln in lines[2:5]
    }
    assert rows == {
        "ble_notify.py": ["pass", "timeout"],
        "ble_shutdown.py": ["fail [1]", "-"],
        "perf_l2cap.py": ["fail [1]", "pass"],
    }
    assert lines[5:] == [f"[1] {no_l2cap}", "2 fail, 2 pass, 1 timeout"]


def test_all_passed_allows_skips_but_not_failures():
    ok = {("a/b", "t1.py"): result("t1.py", "pass"), ("a/b", "t2.py"): result("t2.py", "skip")}
    assert aioble.all_passed(ok)
    for outcome in ("fail", "timeout", "error"):
        assert not aioble.all_passed({**ok, ("a/b", "t3.py"): result("t3.py", outcome)})
