"""vradio.instance.LineInstance and vradio.micropython, with CPython as the child."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from bumble import hci
from vradio.instance import InstanceError, LineInstance
from vradio.micropython import (
    address_from_micropython,
    address_to_micropython,
    bond_file,
    micropython_instance,
)
from vradio_testlib import Runner

# A stand-in for the agent: answers each command line, "ERR" for "bad".
ECHO = """
import os, sys
print("READY", flush=True)
print("started", file=sys.stderr, flush=True)
for line in sys.stdin:
    word = line.split()[0]
    if word == "quit":
        sys.exit(3)
    if word == "hang":
        continue
    if word == "env":
        print("HOME", os.environ["HOME"], os.environ["MICROPYBTUART"], os.getcwd(), flush=True)
    print(("ERR " if word == "bad" else "OK ") + line.strip(), flush=True)
"""


def echo(tmp_path: Path) -> LineInstance:
    script = tmp_path / "echo.py"
    script.write_text(ECHO)
    return LineInstance([sys.executable, script], dict(os.environ), name="echo")


def test_command_waits_for_its_reply_and_keeps_every_line(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with echo(tmp_path) as child:
            await child.expect("READY")
            match = await child.command("one 1", r"OK one (\d)")
            assert match[1] == "1"
            await child.command("two")
            assert child.lines == ["READY", "OK one 1", "OK two"]
            assert [m[0] for m in child.seen(r"OK .*")] == ["OK one 1", "OK two"]
            assert child.stderr_lines == ["started"]

    run(scenario())


def test_an_err_line_fails_the_wait_with_the_transcript(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with echo(tmp_path) as child:
            await child.expect("READY")
            with pytest.raises(InstanceError, match="(?s)'ERR bad thing' while waiting.*READY"):
                await child.command("bad thing")
            # A wait that expects the ERR line gets it.
            assert (await child.command("bad again", r"ERR bad (\w+)"))[1] == "again"

    run(scenario())


def test_timeout_and_end_of_output_raise(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with echo(tmp_path) as child:
            await child.expect("READY")
            with pytest.raises(InstanceError, match="within 0.2 s"):
                await child.command("hang", timeout=0.2)
            assert await child.stop() == 3
            with pytest.raises(InstanceError, match="output ended"):
                await child.expect("never")
            with pytest.raises(InstanceError, match="process ended"):
                await child.send("late")

    run(scenario())


def test_kill_is_immediate(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        child = await echo(tmp_path).start()
        await child.expect("READY")
        await child.kill()
        assert child.returncode == -9
        assert "exited with -9" in child.transcript()

    run(scenario())


def test_micropython_instance_gets_its_uart_home_and_cwd(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        script = tmp_path / "echo.py"
        script.write_text(ECHO)
        home = tmp_path / "home"
        home.mkdir()
        child = micropython_instance(sys.executable, script, "/dev/pts/77", home)
        async with child:
            await child.expect("READY")
            await child.command("env", rf"HOME {home} /dev/pts/77 {home}")
        assert bond_file(home) == home / ".micropython" / "btstack_bonds"
        assert bond_file(home, "nimble") == home / ".micropython" / "nimble_bonds"

    run(scenario())


def test_addresses_convert_both_ways() -> None:
    static = address_from_micropython(1, "c10000000002")
    assert static == hci.Address("C1:00:00:00:00:02") and static.is_static
    public = address_from_micropython(0, "28cdc1000001")
    assert public == hci.Address("28:CD:C1:00:00:01/P") and public.is_public
    assert address_to_micropython(static) == (1, "c10000000002")
    assert address_to_micropython(public) == (0, "28cdc1000001")
    identity = hci.Address("28:CD:C1:00:00:01", hci.Address.PUBLIC_IDENTITY_ADDRESS)
    assert address_to_micropython(identity) == (0, "28cdc1000001")
    with pytest.raises(ValueError):
        address_from_micropython(255, "000000000000")
