"""``python -m vradio``: output protocol, symlinks, traces, clean SIGTERM exit."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(hci\d+) (/dev/pts/\d+)$")
H4_RESET = bytes.fromhex("01030c00")
H4_RESET_COMPLETE = bytes.fromhex("040e0401030c00")
STARTUP_TIMEOUT_S = 10.0


def read_until_ready(process: subprocess.Popen[bytes]) -> list[str]:
    """Collect stdout lines up to READY, bounded in time.

    Reads the raw fd: select() on a buffered reader misses lines it buffered.
    """
    assert process.stdout is not None
    fd = process.stdout.fileno()
    output = b""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"vradio exited before READY; got {output!r}"
            output += chunk
            if output.endswith(b"READY\n"):
                return output.decode().splitlines()[:-1]
    raise AssertionError(f"no READY within {STARTUP_TIMEOUT_S} s; got {output!r}")


def reset_over(path: Path) -> bytes:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, H4_RESET)
        reply = b""
        deadline = time.monotonic() + 5.0
        while len(reply) < len(H4_RESET_COMPLETE) and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                reply += os.read(fd, len(H4_RESET_COMPLETE) - len(reply))
        return reply
    finally:
        os.close(fd)


def test_cli_serves_ptys_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    links = tmp_path / "links"
    traces = tmp_path / "traces"
    log = tmp_path / "vradio.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "tools"), "VRADIO_LOG": str(log)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vradio",
            "--count",
            "2",
            "--dir",
            str(links),
            "--trace",
            str(traces),
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        lines = read_until_ready(process)
        matches = [LINE.match(line) for line in lines]
        assert all(matches), lines
        assert [m.group(1) for m in matches if m] == ["hci0", "hci1"]
        for match in matches:
            assert match is not None
            link = links / match.group(1)
            assert os.path.realpath(link) == match.group(2)
        assert reset_over(links / "hci0") == H4_RESET_COMPLETE
        assert reset_over(links / "hci0") == H4_RESET_COMPLETE  # a restarted host

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5.0) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not (links / "hci0").exists() and not (links / "hci1").exists()
    # VRADIO_LOG keeps vradio's debug log (here: the host attaching) in a file.
    assert "[hci0] host opened" in log.read_text()
    trace = (traces / "hci0.btsnoop").read_bytes()
    assert trace.startswith(b"btsnoop\0") and H4_RESET in trace and H4_RESET_COMPLETE in trace
