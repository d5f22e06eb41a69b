"""The main job's demo: a bond that survives restarts, told step by step.

For each stack, two unix instances run ``ble_gap_pair_bond_restart.py`` over
the virtual radio: they pair and bond, then the peripheral is switched off and
on, killed (a power cut) and cleanly restarted, and each time the central
reconnects and asks for encryption.  Each step is told from three sources:
what the test printed (encryption, secrets written, the device's address),
and what the radio saw (the peripheral's HCI trace: SMP Pairing Requests on
that connection, and how long encryption took).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from . import BUILD_DIR, REPO_ROOT
from .multitest import Result, run_test

if str(REPO_ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tools"))  # the radio's library, as for the rig
from vradio.btsnoop import Connection, connections  # noqa: E402

TEST = "ble_gap_pair_bond_restart.py"
STACKS = ("btstack", "nimble")
# The test's phases, in order, and how to say what happened before each.
STEPS = (
    ("pair", "pair + bond"),
    ("active", "ble.active(0)/(1)"),
    ("hard", "power cut (kill), boot"),
    ("soft", "clean restart (exit), boot"),
)
_LINE = re.compile(r"^phase (\w+) (encryption|secrets written|same address) (.*)$", re.M)


@dataclass
class Step:
    label: str
    encryption: str = "?"  # as _IRQ_ENCRYPTION_UPDATE gave it: (encrypted, authenticated, bonded)
    secrets_written: str = "?"
    same_address: str = "?"
    connection: Connection | None = None

    @property
    def new_pairing(self) -> bool:
        return self.connection is not None and self.connection.pairing_requests > 0

    def ok(self, first: bool) -> bool:
        if (
            self.encryption != "(1, 0, 1)"
            or self.connection is None
            or self.same_address != "True"
        ):
            return False
        # The first step pairs once; every later one must not pair at all.
        expected = 1 if first else 0
        return (
            self.connection.pairing_requests == expected
            and (self.secrets_written == "True") == first
        )


def instance0_output(output: str) -> str:
    """The peripheral's lines of the test output (run with -s)."""
    test = output.split("### TEST ###")[-1] if "### TEST ###" in output else output
    part = test.split("--- instance0 ---")[-1]
    return part.split("--- instance1 ---")[0]


def steps(result: Result, trace: Path) -> list[Step]:
    found = {name: Step(label) for name, label in STEPS}
    for phase, what, value in _LINE.findall(instance0_output(result.output)):
        if phase in found:
            attr = {"encryption": "encryption", "secrets written": "secrets_written"}.get(
                what, "same_address"
            )
            setattr(found[phase], attr, value)
    conns = connections(trace) if trace.is_file() else []
    for (name, _), conn in zip(STEPS, conns, strict=False):
        found[name].connection = conn
    return [found[name] for name, _ in STEPS]


def describe(step: Step, first: bool) -> str:
    conn = step.connection
    took = ""
    if conn and conn.encrypted_s is not None:
        took = f", {1000 * (conn.encrypted_s - conn.up_s):.0f} ms to encryption"
    radio = f"radio: {conn.pairing_requests} Pairing Request(s)" if conn else "radio: no trace"
    if not step.ok(first):
        return (
            f"FAILED (encryption {step.encryption}, secrets written {step.secrets_written}, "
            f"same address {step.same_address}; {radio})"
        )
    if first:
        return f"ok (legacy pairing, Just Works: a new bond; {radio}{took})"
    return f"re-encrypted with the stored key, no pairing ({radio}), same address{took}"


def run(tree: Path) -> int:
    """Run the demo for both stacks; 0 if every step did what it should."""
    failed = 0
    for stack in STACKS:
        trace_dir = BUILD_DIR / "demo" / stack
        print(f"\ndemo, {stack}: two unix {stack} instances over the virtual radio ({TEST})")
        result = run_test(
            tree, tree / "tests" / "multi_bluetooth" / TEST, (stack, stack), trace_dir
        )
        for i, step in enumerate(steps(result, trace_dir / "hci0.btsnoop")):
            text = describe(step, first=i == 0)
            failed += text.startswith("FAILED")
            print(f"  {step.label + ' ':.<32} {text}")
        if result.outcome != "pass":
            failed += 1
            print(f"  the test itself: {result.outcome}\n{result.detail}")
        print(
            f"  HCI traces (btsnoop, open with Wireshark): {trace_dir}/hci0.btsnoop (peripheral),"
            f" hci1.btsnoop (central)"
        )
    print(
        "\nwhere the bonds live: the unix firmware keeps them in ~/.micropython/<stack>_bonds"
        " (these instances: a file in their own HOME); read one with"
        " `python tools/bondfile.py FILE` (keys shown with --show-keys)"
    )
    return 1 if failed else 0
