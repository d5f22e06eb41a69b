"""Power-cut sweep over the bond store's life, on a flashdev image (littlefs or FAT).

:func:`prepare` plays a chain of phases once, without cutting, on one image:

  boot     first ``active(1)``: ER/IR and the identity address are stored
  pair     peer 0 pairs (first bond)
  repair   peer 0 pairs again (its entry is replaced)
  unpair   ``gap_unpair`` of peer 1 (peers 0..2 bonded)
  evict    peer 16 pairs with 16 bonds stored (the 17th evicts one)

keeping a copy of the image and of the peers' key stores at each phase's
start, and counting that boot's programs and erases.  :func:`run_case` then
replays one phase from its start with a power cut at operation N (its torn
prefix lands), kills the firmware and boots it again from the image,
without cutting, and checks what a user would see:

* the image mounts and BLE comes up, with no traceback in the output;
* every bond ``ble.gap_bonds()`` lists re-encrypts with its peer, with no
  pairing request (with the peer's new keys, or the ones it had at the
  phase's start: the state before or after the cut); a listed bond that
  re-encrypts with neither is a **half-bond**;
* a bond that was stored before the phase, and that the phase does not
  replace or evict, is still listed (``bonds_lost`` otherwise);
* a bond deleted by ``gap_unpair`` stays deleted once ``gap_unpair`` returned;
* a peer never seen before can pair.

:func:`sweep` runs every (phase, N) case in a small process pool.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ble_agent import BOND_TAGS
from bondfile import decode_device_db, decode_nimble_sec, parse
from bumble import hci
from flashdev_rig import (
    FILESYSTEMS,
    FRESH_PEER,
    AgentConfig,
    FlashAgent,
    FlashRig,
    Session,
    flash_rig,
    make_image,
    peer_address,
    run_until_cut,
)

CASE_TIMEOUT_S = 120.0
SETTLE_S = 0.3
IMAGE = "image.bin"
KEYS = "keys"
BOND_FILE = "/flash/bonds"
EVICT_PEER = 16
UNPAIR_PEER = 1
# Torn-operation modes: how much of the cut program/erase lands.
CUT_KEEP = {"half": -1, "none": 0}


@dataclass(frozen=True)
class PhaseSpec:
    """What :func:`run_case` needs to replay one phase (picklable)."""

    name: str
    fs: str
    stack: str
    start_dir: str  # image and key stores at the phase's start
    ops: int  # programs + erases of the boot that plays it
    start_bonds: tuple[str, ...]  # bonds listed at the phase's start
    end_bonds: tuple[str, ...]  # and at its end (dry run)


@dataclass
class CaseResult:
    phase: str
    n: int
    keep: str
    cut: bool = False  # the cut happened (the boot reached operation n)
    unpair_returned: bool = False  # gap_unpair returned before the cut
    bonds: int = 0
    half_bonds: int = 0
    half_bond_entries: list[str] = field(default_factory=list)  # what the file holds
    old_keys: int = 0  # bonds that re-encrypted with the peer's keys from before
    unverifiable: int = 0  # listed, but the peer holds no key for us at all
    bonds_lost: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def recovered(self) -> bool:
        return not self.problems and not self.half_bonds and not self.bonds_lost


# ------------------------------------------------------------------ phases
Steps = Callable[[Session], Awaitable[None]]


async def _nothing(_session: Session) -> None:
    return None


async def _pair(session: Session, *peers: int) -> None:
    for index in peers:
        await session.pair(index)


async def _unpair(session: Session) -> None:
    await session.unpair(UNPAIR_PEER)


# Each phase: (name, steps swept, setup steps played after it, not swept).
PHASES: list[tuple[str, Steps, Steps]] = [
    ("boot", _nothing, _nothing),
    ("pair", lambda s: _pair(s, 0), _nothing),
    ("repair", lambda s: _pair(s, 0), lambda s: _pair(s, 1, 2)),
    ("unpair", _unpair, lambda s: _pair(s, 1, *range(3, EVICT_PEER))),
    ("evict", lambda s: _pair(s, EVICT_PEER), _nothing),
]
STEPS = {name: steps for name, steps, _ in PHASES}


def _config(workdir: Path, fs: str, stack: str, cut_at: int = 0, keep: int = -1) -> AgentConfig:
    spec = FILESYSTEMS[fs]
    return AgentConfig(
        str(workdir / IMAGE), spec.fs, spec.block_size, cut_at=cut_at, cut_keep=keep, stack=stack
    )


def _copy_state(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / IMAGE, dst / IMAGE)
    shutil.rmtree(dst / KEYS, ignore_errors=True)
    if (src / KEYS).exists():
        shutil.copytree(src / KEYS, dst / KEYS)
    else:
        (dst / KEYS).mkdir()


async def _play(rig: FlashRig, config: AgentConfig, steps: Steps) -> tuple[Session, int]:
    """Boot, run ``steps``, settle; the session and its boot's operation count."""
    session = await Session.start(rig, config)
    await steps(session)
    await session.settle(SETTLE_S)
    return session, (await session.agent.stats())["ops"]


async def _prepare(workdir: Path, fs: str, stack: str) -> list[PhaseSpec]:
    live = workdir / "live"
    live.mkdir(parents=True, exist_ok=True)
    make_image(live / IMAGE, FILESYSTEMS[fs])
    specs = []
    start_bonds: tuple[str, ...] = ()
    for name, steps, setup in PHASES:
        start = workdir / "start" / name
        _copy_state(live, start)
        async with flash_rig(live, live / KEYS) as rig:
            session, ops = await _play(rig, _config(live, fs, stack), steps)
            end_bonds = tuple(str(a) for a in await session.bonds())
            await session.agent.power_cut()
            specs.append(PhaseSpec(name, fs, stack, str(start), ops, start_bonds, end_bonds))
            start_bonds = end_bonds
            if setup is not _nothing:
                session, _ = await _play(rig, _config(live, fs, stack), setup)
                start_bonds = tuple(str(a) for a in await session.bonds())
                await session.agent.power_cut()
    return specs


def prepare(workdir: Path, fs: str, stack: str = "btstack") -> list[PhaseSpec]:
    """Play the phase chain on a new ``fs`` image; each phase's start state and size."""
    return asyncio.run(asyncio.wait_for(_prepare(workdir, fs, stack), 600))


# ------------------------------------------------------------------- cases
async def _cut_run(rig: FlashRig, config: AgentConfig, phase: PhaseSpec, result: CaseResult):
    agent = await rig.boot(config)

    async def steps() -> None:
        if not agent.mounted():
            raise RuntimeError("image did not mount before the cut")
        session = Session(rig, agent, await agent.activate_flash())
        await STEPS[phase.name](session)
        await session.settle(SETTLE_S)

    cut = await run_until_cut(agent, steps())
    result.cut = cut is not None
    returned = agent.line_index(r"OK unpair")
    cut_line = agent.line_index(r"FLASHDEV CUT \d+")
    result.unpair_returned = returned is not None and (cut_line is None or returned < cut_line)
    await agent.power_cut()


async def _keys_for_us(rig: FlashRig, index: int, ours: str) -> bool:
    peer = await rig.peer(index)
    return await peer.keystore.get(ours) is not None


async def _describe_entry(agent: FlashAgent, stack: str, address: hci.Address) -> str:
    """The bond file's bond record for ``address``, decoded by tools/bondfile.py
    (best effort: a store of another format version is only reported as such)."""
    data = await agent.read_file(BOND_FILE)
    try:
        parsed = parse(data or b"")
    except Exception as e:  # noqa: BLE001 - a format bondfile.py does not know
        return f"{address}: bond file not readable by bondfile.py ({type(e).__name__})"
    for entry in parsed.entries.values():
        raw = entry.tag.to_bytes(4, "big")
        if raw[:3] == BOND_TAGS[stack]:
            decode = decode_nimble_sec if stack == "nimble" else decode_device_db
            decoded = decode(entry.value, False)
            if decoded.get("address") == str(address).split("/")[0]:
                return f"{address}: " + ", ".join(
                    f"{k}={decoded.get(k)}" for k in ("ltk_present", "irk_present", "key_size")
                )
    return f"{address}: no entry in the bond file"


async def _verify(rig: FlashRig, config: AgentConfig, phase: PhaseSpec, result: CaseResult):
    agent = await rig.boot(config)
    if not agent.mounted():
        result.problems.append("image does not mount")
        return
    try:
        session = Session(rig, agent, await agent.activate_flash())
        listed = await session.bonds()
    except Exception as e:  # noqa: BLE001 - any failure here is the finding
        result.problems.append(f"BLE did not come up: {type(e).__name__}")
        return
    ours = str(session.ours)
    names = [str(a) for a in listed]
    result.bonds = len(listed)
    start_keys = Path(phase.start_dir) / KEYS
    for address in listed:
        index = rig.peer_index(address)
        if index is None:
            result.problems.append(f"unknown bond {address}")
            continue
        if await session.reencrypt(index):
            continue
        peer = await rig.peer(index)
        old = start_keys / peer.keys_file.name
        new_keys = await _keys_for_us(rig, index, ours)
        now = peer.keys_file.read_bytes() if peer.keys_file.exists() else b""
        if old.exists() and old.read_bytes() != now:
            shutil.copyfile(old, peer.keys_file)
            if await session.reencrypt(index):
                result.old_keys += 1
                continue
        if not new_keys and not await _keys_for_us(rig, index, ours):
            result.unverifiable += 1  # the peer never got to store a key
        else:
            result.half_bonds += 1
            result.half_bond_entries.append(await _describe_entry(agent, phase.stack, address))
    required = set(phase.start_bonds) & set(phase.end_bonds)
    result.bonds_lost = sorted(required - set(names))
    allowed = set(phase.start_bonds) | set(phase.end_bonds)
    if unexpected := set(names) - allowed:
        result.problems.append(f"unexpected bonds {sorted(unexpected)}")
    if phase.name == "unpair" and result.unpair_returned:
        if any(name.startswith(peer_address(UNPAIR_PEER)) for name in names):
            result.problems.append("bond deleted by gap_unpair came back")
    try:
        await session.pair(FRESH_PEER)
    except Exception as e:  # noqa: BLE001
        result.problems.append(f"a fresh peer cannot pair: {type(e).__name__}")
    if tracebacks := agent.tracebacks():
        result.problems.append(f"traceback after the cut: {tracebacks[0]}")


async def _case(phase: PhaseSpec, n: int, keep: str, workdir: Path) -> CaseResult:
    result = CaseResult(phase.name, n, keep)
    _copy_state(Path(phase.start_dir), workdir)
    async with flash_rig(workdir / "cut", workdir / KEYS) as rig:
        config = _config(workdir, phase.fs, phase.stack, n, CUT_KEEP[keep])
        await _cut_run(rig, config, phase, result)
    if result.cut:
        async with flash_rig(workdir / "verify", workdir / KEYS) as rig:
            await _verify(rig, _config(workdir, phase.fs, phase.stack), phase, result)
    return result


def run_case(phase: PhaseSpec, n: int, keep: str, workdir: str) -> CaseResult:
    """One cut case (a pool worker's job): cut ``phase`` at operation ``n``, then check."""
    t0 = time.monotonic()
    try:
        case = _case(phase, n, keep, Path(workdir))
        result = asyncio.run(asyncio.wait_for(case, CASE_TIMEOUT_S))
    except (Exception, asyncio.CancelledError) as e:  # noqa: BLE001 - the case's problem
        result = CaseResult(phase.name, n, keep, cut=True, problems=[f"rig: {e!r}"[:300]])
    result.seconds = time.monotonic() - t0
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def _quiet_worker() -> None:
    # Bumble's controller warns about every vendor command BTstack probes.
    logging.getLogger("bumble").setLevel(logging.ERROR)


def jobs() -> int:
    return int(os.environ.get("FLASHDEV_JOBS", "2"))


def keep_modes() -> list[str]:
    return os.environ.get("FLASHDEV_CUT_KEEP", "half,none").split(",")


def sweep(
    phases: list[PhaseSpec], workdir: Path, modes: list[str] | None = None
) -> list[CaseResult]:
    """Every phase x cut point x torn mode, ``jobs()`` at a time."""
    cases = [
        (phase, n, keep)
        for phase in phases
        for keep in modes or keep_modes()
        for n in range(1, phase.ops + 1)
    ]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=jobs(), mp_context=context, initializer=_quiet_worker
    ) as pool:
        futures = [
            pool.submit(run_case, phase, n, keep, str(workdir / f"{phase.name}-{keep}-{n}"))
            for phase, n, keep in cases
        ]
        return [future.result() for future in futures]


@dataclass(frozen=True)
class PhaseSummary:
    phase: str
    cut_points: int
    cuts: int
    recovered: int
    half_bonds: int
    bonds_lost: int
    old_keys: int
    unverifiable: int
    problems: int


def summarize(phases: list[PhaseSpec], results: list[CaseResult]) -> list[PhaseSummary]:
    rows = []
    for phase in phases:
        mine = [r for r in results if r.phase == phase.name]
        cut = [r for r in mine if r.cut]
        rows.append(
            PhaseSummary(
                phase.name,
                len(mine),
                len(cut),
                sum(r.recovered for r in cut),
                sum(r.half_bonds for r in cut),
                sum(len(r.bonds_lost) for r in cut),
                sum(r.old_keys for r in cut),
                sum(r.unverifiable for r in cut),
                sum(bool(r.problems) for r in cut),
            )
        )
    return rows


def format_summary(
    fs: str, rows: list[PhaseSummary], results: list[CaseResult], stack: str = "btstack"
) -> str:
    header = (
        f"{'phase':<8} {'cut points':>10} {'cut':>5} {'recovered':>9} {'half-bonds':>10} "
        f"{'bonds lost':>10} {'old keys':>8} {'no peer key':>11} {'other':>6}"
    )
    modes = ",".join(sorted({r.keep for r in results}))
    lines = [f"power-cut sweep, {stack} on {fs} (torn modes: {modes})", header]
    for r in rows:
        lines.append(
            f"{r.phase:<8} {r.cut_points:>10} {r.cuts:>5} {r.recovered:>9} {r.half_bonds:>10} "
            f"{r.bonds_lost:>10} {r.old_keys:>8} {r.unverifiable:>11} {r.problems:>6}"
        )
    for result in results:
        if result.cut and not result.recovered:
            detail = list(result.problems)
            if lost := result.bonds_lost:
                more = f", ... ({len(lost)} bonds)" if len(lost) > 2 else ""
                detail.append(f"lost {', '.join(lost[:2])}{more}")
            if result.half_bonds:
                detail.append(f"half-bond(s): {' / '.join(result.half_bond_entries)}")
            lines.append(f"  {result.phase} cut {result.n} ({result.keep}): {'; '.join(detail)}")
    return "\n".join(lines)
