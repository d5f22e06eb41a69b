"""The bond store and the application share one filesystem, rp2-style.

Every flashdev call runs pending scheduled work (as rp2_flash.c does with
``mp_event_handle_nowait()``), so the BTstack poll, and with it a bond store
write, can run in the middle of the application's own filesystem call.
:func:`run` boots the firmware on a littlefs image with that servicing on,
has the application append a line to ``/flash/log.txt`` every few ms while
``pairings`` peers pair one after the other, then cuts the power (SIGKILL)
and boots again without servicing, and reports:

* ``nested_programs``/``nested_erases``: programs/erases the device saw while
  another of its calls was in progress (depth > 1: a filesystem re-entered);
* whether the log reads back intact (every line well formed, in order), before
  and after the power cut;
* how many of the peers re-encrypt after the cut without pairing again;
* tracebacks (an exception escaping an IRQ or the scheduler, or an append
  that failed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from bondfile import parse
from flashdev_rig import LFS2, AgentConfig, LogCheck, Session, flash_rig, make_image

BOND_FILE = "/flash/bonds"


def device_db_peers(data: bytes | None) -> list[int]:
    """The bond file's device-DB entries ('BTD'+i) by index."""
    entries = parse(data).entries if data else {}
    return [t & 0xFF for t in entries if t >> 8 == int.from_bytes(b"BTD", "big")]


LOG_PERIOD_MS = 5
# Each device call lasts this long, running pending work meanwhile.  Longer
# than the unix port's 1 ms BTstack poll period, so that every call runs the
# poll queued meanwhile, as a rp2 flash operation does (an erase takes tens of
# ms, then mp_event_handle_nowait() runs what arrived).
SERVICE_US = 1500
PAIRINGS = 10
TIMEOUT_S = 300.0


@dataclass
class ConcurrencyResult:
    pairings: int
    paired: int = 0
    pair_errors: list[str] = field(default_factory=list)
    nested_programs: int = 0
    nested_erases: int = 0
    nested_calls: int = 0
    max_depth: int = 0
    irqs_in_calls: int = 0  # BLE events delivered inside a device call (servicing works)
    nested: list[list[object]] = field(default_factory=list)  # [kind, op, depth]
    log_before: LogCheck | None = None
    log_after: LogCheck | None = None
    durable_when_reported: int = 0  # pairings whose bond was in the file right after
    bonds_after: int = 0
    reencrypted: int = 0
    tracebacks: list[str] = field(default_factory=list)

    @property
    def nested_writes(self) -> int:
        return self.nested_programs + self.nested_erases

    def summary(self) -> str:
        """The verdicts first, the same in every run; then the figures that
        depend on timing (how many lines the log got, how many events came
        during a device call), on a line of their own."""
        return "\n".join(
            [
                f"concurrency on lfs2: {self.paired}/{self.pairings} pairings "
                f"while logging every {LOG_PERIOD_MS} ms",
                f"  nested writes: {self.nested_writes} ({self.nested_programs} programs, "
                f"{self.nested_erases} erases; {self.nested_calls} nested calls, "
                f"max depth {self.max_depth})",
                f"  log before the cut: {_log_verdict(self.log_before)}",
                f"  log after the cut:  {_log_verdict(self.log_after)}"
                + (", no line lost" if self.log_lines_kept else ", LINES LOST"),
                f"  in the file when the agent next ran: {self.durable_when_reported}"
                f"/{self.pairings} bonds",
                f"  after the cut: {self.bonds_after} bonds listed, "
                f"{self.reencrypted}/{self.pairings} peers re-encrypt",
                f"  pairing errors: {self.pair_errors[:3]}",
                f"  tracebacks: {self.tracebacks[:3]}",
                f"  measured (varies with timing): {self.log_lines} log lines, "
                f"{self.irqs_in_calls} BLE events delivered inside a device call",
            ]
        )

    @property
    def log_lines(self) -> int:
        return self.log_before.lines if self.log_before else 0

    @property
    def log_lines_kept(self) -> bool:
        before, after = self.log_before, self.log_after
        return before is not None and after is not None and after.lines >= before.lines


def _log_verdict(check: LogCheck | None) -> str:
    if check is None:
        return "not read"
    bad = "none" if check.first_bad < 0 else f"line {check.first_bad}"
    return f"malformed line: {bad}, append errors: {check.errors}"


async def _run(workdir: Path, pairings: int) -> ConcurrencyResult:
    result = ConcurrencyResult(pairings)
    image = workdir / "image.bin"
    make_image(image, LFS2)
    live = AgentConfig(str(image), LFS2.fs, LFS2.block_size, service_us=SERVICE_US)
    async with flash_rig(workdir / "run", workdir / "keys") as rig:
        session = await Session.start(rig, live)
        await session.agent.log(LOG_PERIOD_MS)
        for index in range(pairings):
            try:
                await session.pair(index)
                result.paired += 1
                # Read back at once: the bond is in the file by the time the
                # application (the agent's loop) runs after the event.
                if len(device_db_peers(await session.agent.read_file(BOND_FILE))) == index + 1:
                    result.durable_when_reported += 1
            except Exception as e:  # noqa: BLE001 - counted, the run goes on
                result.pair_errors.append(f"peer {index}: {type(e).__name__}: {e}"[:200])
                break
        await session.settle()
        stats = await session.agent.stats()
        await session.agent.log(0)
        result.log_before = await session.agent.readlog()
        result.tracebacks += session.agent.tracebacks()
        await session.agent.power_cut()  # kill -9
        for key in ("nested_programs", "nested_erases", "nested_calls", "max_depth"):
            setattr(result, key, stats[key])
        result.irqs_in_calls = stats.get("irqs_in_calls", 0)
        result.nested = stats["nested"]

        after = await Session.start(rig, AgentConfig(str(image), LFS2.fs, LFS2.block_size))
        result.log_after = await after.agent.readlog()
        result.bonds_after = len(await after.bonds())
        for index in range(result.paired):
            try:
                result.reencrypted += await after.reencrypt(index)
            except Exception as e:  # noqa: BLE001 - counted as not re-encrypted
                result.pair_errors.append(f"re-encrypt {index}: {type(e).__name__}"[:200])
        result.tracebacks += after.agent.tracebacks()
    return result


def run(workdir: Path, pairings: int = PAIRINGS) -> ConcurrencyResult:
    return asyncio.run(asyncio.wait_for(_run(workdir, pairings), TIMEOUT_S))
