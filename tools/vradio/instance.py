"""A host under test as a child process, driven by lines over its stdin/stdout.

``LineInstance`` starts a program (typically MicroPython's unix port running a
script, with ``MICROPYBTUART`` pointing at a :class:`vradio.radio.VirtualRadio`
pty) inside the caller's asyncio loop, collects every line it prints, and lets
a test send commands and wait for the line it expects, always with a timeout.
:meth:`LineInstance.kill` is a power cut; a new instance started with the same
``HOME`` is the same device booting again.

Every line is kept (``lines``, ``stderr_lines``) so that a failure can show the
whole conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

DEFAULT_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 3.0
# A line the agent prints for a command that raised: fails any wait at once.
ERROR_PREFIX = "ERR "


class InstanceError(RuntimeError):
    """The instance did not say what was expected (the message has its transcript)."""


class LineInstance:
    """One run of ``argv`` with ``env``; use ``async with`` or call :meth:`start`."""

    def __init__(
        self,
        argv: Sequence[str | Path],
        env: Mapping[str, str],
        cwd: Path | str | None = None,
        name: str = "instance",
    ) -> None:
        self.argv = [str(arg) for arg in argv]
        self.env = dict(env)
        self.cwd = cwd
        self.name = name
        self.lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._cursor = 0  # lines before it were consumed by expect()
        self._changed = asyncio.Event()
        self._process: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._eof = False

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> LineInstance:
        self._process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
            # Its own process group: a signal meant for the test runner (^C)
            # must not reach it before we have cleaned up.
            start_new_session=True,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self._process.stdout, self.lines, eof=True)),
            asyncio.create_task(self._read(self._process.stderr, self.stderr_lines, eof=False)),
        ]
        return self

    async def __aenter__(self) -> LineInstance:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.kill()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.returncode

    async def kill(self) -> None:
        """SIGKILL, as a power cut: nothing gets a chance to flush or close."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        await self._reap()

    async def stop(self, command: str = "quit", timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Ask the program to exit with ``command``; kill it if it does not in time."""
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ConnectionError, InstanceError):
                await self.send(command)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                pass
        await self.kill()
        return process.returncode

    async def _reap(self) -> None:
        assert self._process is not None
        await self._process.wait()
        # The pipes close with the process, unless it left a child holding
        # them: do not wait for that one.
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.gather(*self._readers), STOP_TIMEOUT_S)

    async def _read(self, stream: asyncio.StreamReader, into: list[str], eof: bool) -> None:
        try:
            while line := await stream.readline():
                into.append(line.decode(errors="replace").rstrip("\r\n"))
                self._changed.set()
        except ValueError:
            into.append("<line too long: output no longer read>")
        finally:
            if eof:
                self._eof = True
                self._changed.set()

    # ---------------------------------------------------------- conversation
    async def send(self, line: str) -> None:
        if self._process is None or self._process.stdin is None:
            raise InstanceError(f"{self.name}: not started")
        if self._process.returncode is not None or self._eof:
            raise InstanceError(self.transcript(f"cannot send {line!r}: the process ended"))
        self._process.stdin.write(line.encode() + b"\n")
        await self._process.stdin.drain()

    async def expect(self, pattern: str, timeout: float = DEFAULT_TIMEOUT_S) -> re.Match[str]:
        """Wait for the next line matching ``pattern`` (``re.fullmatch``) and return it.

        Lines before it are consumed.  An ``ERR`` line that does not match,
        the end of the output, or ``timeout`` raises :class:`InstanceError`.
        """
        regex = re.compile(pattern)

        async def scan() -> re.Match[str]:
            while True:
                while self._cursor < len(self.lines):
                    line = self.lines[self._cursor]
                    self._cursor += 1
                    if match := regex.fullmatch(line):
                        return match
                    if line.startswith(ERROR_PREFIX):
                        raise InstanceError(
                            self.transcript(f"{line!r} while waiting for {pattern!r}")
                        )
                if self._eof:
                    raise InstanceError(self.transcript(f"output ended waiting for {pattern!r}"))
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            raise InstanceError(
                self.transcript(f"no line matching {pattern!r} within {timeout} s")
            ) from None

    async def command(
        self, line: str, reply: str | None = None, timeout: float = DEFAULT_TIMEOUT_S
    ) -> re.Match[str]:
        """Send ``line`` and wait for ``reply`` (default: ``OK <first word>``)."""
        await self.send(line)
        return await self.expect(reply or rf"OK {re.escape(line.split()[0])}", timeout)

    def seen(self, pattern: str, since: int = 0) -> list[re.Match[str]]:
        """Every line from index ``since`` on that matches ``pattern`` (consumed or not)."""
        regex = re.compile(pattern)
        return [m for line in self.lines[since:] if (m := regex.fullmatch(line))]

    def transcript(self, problem: str = "") -> str:
        """Everything the instance printed so far, under a header saying how it is."""
        rc = self.returncode
        state = "running" if rc is None else f"exited with {rc}"
        return "\n".join(
            [
                f"{self.name} (pid {self.pid}, {state}){': ' if problem else ''}{problem}",
                "stdout:",
                *(f"  {line}" for line in self.lines),
                "stderr:",
                *(f"  {line}" for line in self.stderr_lines),
            ]
        )
