"""Run the virtual radio (tools/vradio) as a child process for the test rig.

Each test gets a radio of its own.  Starting ``python -m vradio`` afresh
costs 0.4 s of CPU, nearly all of it importing Bumble (measured with
``python -X importtime``), and the suite starts a radio for each of some 260
cases: a sixth of its CPU.  So radios are forked from a server process
(multiprocessing's forkserver) that has imported vradio once; each is still
a process of its own, in a session of its own, speaking the same protocol on
its stdout (``python -m vradio``'s: pty lines, then READY).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import IO

from . import REPO_ROOT

READY_TIMEOUT_S = 30
STOP_TIMEOUT_S = 5
TOOLS = REPO_ROOT / "tools"
_context: ForkServerContext | None = None


class RadioError(RuntimeError):
    pass


def forkserver() -> ForkServerContext:
    """The context whose server has vradio imported (started on first use)."""
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["vradio.__main__", __name__])
        # The server imports those before it knows our sys.path (Python
        # 3.11's forkserver passes sys.path but does not apply it, and
        # ignores a preload that fails to import: every radio then imported
        # Bumble afresh, 0.3 s of CPU each), so it gets the path from
        # PYTHONPATH, for the moment it starts.
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(TOOLS), str(REPO_ROOT), *([saved] if saved else [])]
        )
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved
        if str(TOOLS) not in sys.path:
            sys.path.insert(0, str(TOOLS))  # for the children's own imports
        _context = context
    return _context


def preloaded(out: Connection) -> None:
    """Tell ``out`` whether a forked process starts with vradio imported."""
    out.send("vradio.__main__" in sys.modules)


def serve(argv: list[str], out: Connection) -> None:
    """``python -m vradio`` in a forked radio process, its output into ``out``."""
    os.setsid()  # as start_new_session: the rig stops it with killpg
    os.dup2(out.fileno(), 1)
    os.dup2(out.fileno(), 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    from vradio.__main__ import main

    sys.exit(main(argv))


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
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._read_end: Connection | None = None
        self._stdout: IO[str] | None = None

    def __enter__(self) -> RadioProcess:
        self._tmp = tempfile.TemporaryDirectory(prefix="vradio-")
        argv = ["--count", str(self.count), "--dir", self._tmp.name]
        argv.append("--public-addresses" if self.public_addresses else "--no-public-address")
        if self.trace_dir:
            argv += ["--trace", str(self.trace_dir)]
        context = forkserver()
        self._read_end, write_end = context.Pipe(duplex=False)
        self._proc = context.Process(target=serve, args=(argv, write_end), name="vradio")
        self._proc.start()
        write_end.close()
        self._stdout = open(self._read_end.fileno(), closefd=False)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._stdout
        deadline = time.monotonic() + READY_TIMEOUT_S
        seen = []
        while time.monotonic() < deadline:
            line = self._stdout.readline()
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
        stream = self._stdout
        try:
            while stream and stream.readline():
                pass
        except (OSError, ValueError):
            pass  # closed by __exit__

    def _signal(self, signum: int) -> None:
        assert self._proc and self._proc.pid
        try:
            os.killpg(self._proc.pid, signum)
        except ProcessLookupError:  # not yet in a session of its own, or gone
            try:
                os.kill(self._proc.pid, signum)
            except ProcessLookupError:
                pass

    def __exit__(self, *exc: object) -> None:
        if self._proc:
            if self._proc.is_alive():
                self._signal(signal.SIGTERM)
                self._proc.join(STOP_TIMEOUT_S)
                if self._proc.is_alive():
                    self._signal(signal.SIGKILL)
                    self._proc.join()
            self._proc = None
        if self._stdout:
            self._stdout.close()
            self._stdout = None
        if self._read_end:
            self._read_end.close()
            self._read_end = None
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None
