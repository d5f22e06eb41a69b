"""Expose a controller on a pseudo-terminal speaking H4, surviving host restarts.

``bumble.transport.pty`` is not reused: it reads the master through asyncio
pipes, so the EIO a master gets when the last slave descriptor closes ends the
transport.  A host under test is restarted many times against the same path,
so this bridge instead:

* keeps the master open for its whole life (the ``/dev/pts/N`` path and its
  raw termios settings stay valid for the next host process);
* on EIO (no process has the slave open) stops watching the master, drops
  controller output as a UART with nobody listening would, discards what the
  old host left unread, resets the H4 parser (a killed host may leave half a
  packet) and polls every
  ``POLL_INTERVAL_S`` until a host opens the slave again (a master without a
  slave is always "readable", so watching it would spin);
* never touches the controller's state: the next host's HCI Reset does that.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import termios
import tty
from collections.abc import Callable

from bumble import core
from bumble.transport.common import PacketParser

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.02
READ_SIZE = 4096
# Output kept for a slow host before we give up on it (a real UART would drop).
MAX_PENDING_OUTPUT = 1 << 20


class PtyHciBridge:
    """H4 over a pty master: host packets go to ``on_host_packet``.

    (``PacketParser`` logs and swallows exceptions raised by the callback.)

    Use :meth:`on_packet` as the controller's host sink (``controller.host``).
    """

    def __init__(self, on_host_packet: Callable[[bytes], None], name: str = "") -> None:
        self.name = name
        self._loop = asyncio.get_running_loop()
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        # Raw mode on the slave side, where the line discipline lives, so a host
        # that does not configure the tty still gets a clean byte pipe.
        tty.setraw(slave, termios.TCSANOW)
        tty.setraw(self.master, termios.TCSANOW)
        # Close our slave descriptor: EIO on the master then means "no host".
        os.close(slave)
        os.set_blocking(self.master, False)
        self._parser = PacketParser(_Sink(on_host_packet))
        self._output = bytearray()
        self._attached = False
        self._closed = False
        self._poll_handle: asyncio.TimerHandle | None = None
        self.attach_count = 0
        self._poll()

    # ------------------------------------------------------------------ state
    @property
    def attached(self) -> bool:
        """True while some process has the slave side open (as far as we know)."""
        return self._attached

    def _set_attached(self) -> None:
        if not self._attached:
            self._attached = True
            self.attach_count += 1
            logger.info("[%s] host opened %s", self.name, self.path)
            self._loop.add_reader(self.master, self._on_readable)

    def _set_detached(self) -> None:
        if self._attached:
            logger.info("[%s] host closed %s", self.name, self.path)
            self._loop.remove_reader(self.master)
            self._loop.remove_writer(self.master)
            self._attached = False
            self._output.clear()
            self._parser.reset()
            self._discard_unread_output()
        self._schedule_poll()

    def _discard_unread_output(self) -> None:
        """Drop what the previous host left unread, so it cannot greet the next.

        Those bytes sit in the slave's line discipline, which survives the
        close; flushing from the master side does not reach them, so briefly
        open the slave (no host has it open now) and flush there.
        """
        try:
            slave = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as error:
            logger.warning("[%s] cannot flush %s: %s", self.name, self.path, error)
            return
        try:
            # Input side only: a new host's first command must survive.
            termios.tcflush(slave, termios.TCIFLUSH)
        finally:
            os.close(slave)

    def _schedule_poll(self) -> None:
        if not self._closed and self._poll_handle is None:
            self._poll_handle = self._loop.call_later(POLL_INTERVAL_S, self._poll)

    def _poll(self) -> None:
        self._poll_handle = None
        self._read_once()

    # ------------------------------------------------------------------- input
    def _on_readable(self) -> None:
        self._read_once()

    def _read_once(self) -> None:
        if self._closed:
            return
        try:
            data = os.read(self.master, READ_SIZE)
        except BlockingIOError:
            self._set_attached()  # slave open, nothing to read yet
            return
        except OSError as error:
            if error.errno != errno.EIO:
                raise
            self._set_detached()
            return
        if not data:
            self._set_detached()
            return
        self._set_attached()
        try:
            self._parser.feed_data(data)
        except core.InvalidPacketError as error:
            logger.warning("[%s] H4 framing error: %s", self.name, error)

    # ------------------------------------------------------------------ output
    def on_packet(self, packet: bytes) -> None:
        """Sink for controller output (H4 framed already, as bumble packets are)."""
        if not self._attached or self._closed:
            return
        if len(self._output) + len(packet) > MAX_PENDING_OUTPUT:
            logger.warning("[%s] host not reading, dropping output", self.name)
            return
        was_empty = not self._output
        self._output += packet
        if was_empty:
            self._flush()

    def _flush(self) -> None:
        try:
            written = os.write(self.master, self._output)
        except BlockingIOError:
            written = 0
        except OSError as error:
            if error.errno != errno.EIO:
                raise
            self._set_detached()
            return
        del self._output[:written]
        if self._output:
            self._loop.add_writer(self.master, self._on_writable)
        else:
            self._loop.remove_writer(self.master)

    def _on_writable(self) -> None:
        if self._output:
            self._flush()
        else:
            self._loop.remove_writer(self.master)

    # ------------------------------------------------------------------- close
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._poll_handle is not None:
            self._poll_handle.cancel()
        self._loop.remove_reader(self.master)
        self._loop.remove_writer(self.master)
        os.close(self.master)


class _Sink:
    """Adapter giving a callable the ``TransportSink`` shape PacketParser wants."""

    def __init__(self, callback: Callable[[bytes], None]) -> None:
        self.on_packet = callback
