"""Command line: serve N linked virtual LE controllers on ptys.

Usage::

    python -m vradio --count 2 [--dir DIR] [--public-addresses | --no-public-address]
                     [--trace DIR] [-v]

Output protocol on stdout (parsed by test rigs; keep stable)::

    hci0 /dev/pts/7
    hci1 /dev/pts/8
    READY

One ``hciN <pty path>`` line per controller, in order, then ``READY``; stdout
is flushed after ``READY`` and nothing else is printed to it.  With ``--dir``,
``DIR/hciN`` symlinks to the ptys exist before ``READY`` and are removed on
exit.  Logs go to stderr.  SIGTERM or SIGINT stops the radio: exit status 0.

Controller ``hciN`` has public address ``28:CD:C1:00:00:<N+1>`` (a Raspberry
Pi OUI, like a Pico W's CYW43) by default or with ``--public-addresses``; with
``--no-public-address`` Read BD_ADDR returns 00:00:00:00:00:00 and the host must
set a random static address (like a Zephyr HCI controller).  ``--trace DIR``
writes ``DIR/hciN.btsnoop`` HCI traces.  With ``VRADIO_LOG=FILE`` in the
environment, the log (vradio's own at debug level) is also appended to FILE,
which is how to see it when a test rig discards stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from vradio.radio import VirtualRadio

PUBLIC_ADDRESS_PREFIX = "28:CD:C1:00:00"
LOG_ENV = "VRADIO_LOG"


def public_address(index: int) -> str:
    return f"{PUBLIC_ADDRESS_PREFIX}:{index + 1:02X}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vradio", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2, help="number of controllers")
    parser.add_argument("--dir", type=Path, help="create DIR/hciN symlinks to the ptys")
    addresses = parser.add_mutually_exclusive_group()
    addresses.add_argument(
        "--public-addresses",
        dest="public",
        action="store_true",
        default=True,
        help="give each controller a public address (default)",
    )
    addresses.add_argument(
        "--no-public-address",
        dest="public",
        action="store_false",
        help="controllers have no public address (BD_ADDR 00:00:00:00:00:00)",
    )
    parser.add_argument("--trace", type=Path, help="write DIR/hciN.btsnoop HCI traces")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    return args


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    async with VirtualRadio(trace_dir=args.trace) as radio:
        lines: list[str] = []
        for index in range(args.count):
            name = f"hci{index}"
            controller = radio.add_controller(name, public_address(index) if args.public else None)
            link = args.dir / name if args.dir is not None else None
            lines.append(f"{name} {radio.attach_pty(controller, link)}\n")
        # One write, so a reader never sees a partial READY line.
        sys.stdout.write("".join(lines) + "READY\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    log_format = "%(asctime)s %(name)s %(message)s"
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(level)  # stays at -v's level whatever VRADIO_LOG adds
    logging.basicConfig(level=level, format=log_format, handlers=[stderr])
    if log_path := os.environ.get(LOG_ENV):
        # Test rigs swallow our stderr; this keeps errors (e.g. exceptions in
        # loop callbacks) and vradio's own debug log where they can be read.
        handler = logging.FileHandler(log_path)
        handler.setFormatter(logging.Formatter(log_format))
        logging.getLogger().addHandler(handler)
        logging.getLogger("vradio").setLevel(logging.DEBUG)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
