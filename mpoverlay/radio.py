"""Run the virtual radio (tools/vradio) as a child process for the test rig."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import REPO_ROOT

READY_TIMEOUT_S = 30


class RadioError(RuntimeError):
    pass


class RadioProcess:
    """``python -m vradio --count N``: N virtual controllers, each on a pty.

    Use as a context manager; the process is always terminated on exit.
    """

    def __init__(
        self, count: int, trace_dir: Path | None = None, public_addresses: bool = False
    ) -> None:
        self.count = count
        self.trace_dir = trace_dir
        self.public_addresses = public_addresses
        self.ptys: list[str] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> RadioProcess:
        self._tmp = tempfile.TemporaryDirectory(prefix="vradio-")
        cmd = [sys.executable, "-m", "vradio", "--count", str(self.count), "--dir", self._tmp.name]
        cmd.append("--public-addresses" if self.public_addresses else "--no-public-address")
        if self.trace_dir:
            cmd += ["--trace", str(self.trace_dir)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT / "tools"), *filter(None, [env.get("PYTHONPATH")])]
        )
        self._proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._proc and self._proc.stdout
        deadline = time.monotonic() + READY_TIMEOUT_S
        seen = []
        os.set_blocking(self._proc.stdout.fileno(), True)
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            words = line.split()
            if words[:1] == ["READY"]:
                if len(self.ptys) != self.count:
                    break
                # Keep draining its output so the radio never blocks on a full pipe.
                threading.Thread(target=self._drain, daemon=True).start()
                return
            if len(words) == 2 and words[0].startswith("hci"):
                self.ptys.append(words[1])
        raise RadioError("virtual radio did not start:\n" + "\n".join(seen))

    def _drain(self) -> None:
        stream = self._proc.stdout if self._proc else None
        try:
            while stream and stream.readline():
                pass
        except (OSError, ValueError):
            pass  # closed by __exit__

    def __exit__(self, *exc: object) -> None:
        if self._proc:
            if self._proc.poll() is None:
                os.killpg(self._proc.pid, signal.SIGTERM)
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(self._proc.pid, signal.SIGKILL)
                    self._proc.wait()
            if self._proc.stdout:
                self._proc.stdout.close()
            self._proc = None
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None
