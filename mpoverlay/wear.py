"""Flash wear per bond event: ``python -m mpoverlay.wear [--micropy-dir DIR] [--fs lfs2,fat]``.

The unix BTstack firmware runs on a simulated NOR flash (the flashdev rig,
``host_tests/integration/flashdev_rig.py``: 4 KB blocks, littlefs2 with rp2's
progsize 256, or FAT) with its bond file at ``/flash/bonds``, and Bumble peers
pair with it over the virtual radio.  Around each event the block device's
counters are read and the difference is printed: block erases, program
operations and bytes programmed (for FAT every written sector counts as an
erase and a program of the whole 4 KB block).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import REPO_ROOT
from .build import build_unix
from .tree import prepared_tree

COUNTERS = ("erases", "programs", "bytes_programmed")
SETTLE_S = 0.3
BONDS = 16


@dataclass(frozen=True)
class Wear:
    erases: float
    programs: float
    bytes_programmed: float


def _diff(before: dict[str, Any], after: dict[str, Any]) -> Wear:
    return Wear(*(after[key] - before[key] for key in COUNTERS))


def _mean(rows: list[Wear]) -> Wear:
    n = len(rows)
    return Wear(*(sum(getattr(r, key) for r in rows) / n for key in COUNTERS))


def _import_rig() -> Any:
    for path in (REPO_ROOT / "tools", REPO_ROOT / "host_tests" / "integration"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import flashdev_rig  # noqa: PLC0415

    return flashdev_rig


async def _measure(fs: str, workdir: Path) -> dict[str, Wear]:
    rig_mod = _import_rig()
    spec = rig_mod.FILESYSTEMS[fs]
    image = workdir / f"{fs}.img"
    rig_mod.make_image(image, spec)
    config = rig_mod.AgentConfig(str(image), spec.fs, spec.block_size)
    results: dict[str, Wear] = {}
    async with rig_mod.flash_rig(workdir / fs, workdir / f"{fs}-keys") as rig:
        agent = await rig.boot(config)
        before = await agent.stats()
        session = rig_mod.Session(rig, agent, await agent.activate_flash())
        await session.settle(SETTLE_S)
        results["first active(1): ER/IR, identity"] = _diff(before, await agent.stats())

        async def event(name: str, step: Callable[[], Awaitable[object]]) -> Wear:
            before = await agent.stats()
            await step()
            await session.settle(SETTLE_S)
            wear = _diff(before, await agent.stats())
            results[name] = wear
            return wear

        await event("new bond (first)", lambda: session.pair(0))
        await event("re-encryption of a bond", lambda: session.reencrypt(0))
        await event("CCCD change (subscribe)", lambda: session.reencrypt(0, then="subscribe"))
        await event("re-pair of an existing bond", lambda: session.pair(0))
        more = [await event("new bond", lambda i=i: session.pair(i)) for i in range(1, BONDS)]
        results[f"new bond (mean of 2nd..{BONDS}th)"] = _mean(more)
        del results["new bond"]
        await event(f"eviction ({BONDS + 1}th bond)", lambda: session.pair(BONDS))
        await event("delete (gap_unpair)", lambda: session.unpair(5))
        await session.reencrypt(3, then="subscribe")  # a CCCD for the next delete
        await session.settle(SETTLE_S)
        await event("delete of a bond with a CCCD", lambda: session.unpair(3))
        await agent.power_cut()

        agent = await rig.boot(config)
        before = await agent.stats()
        session = rig_mod.Session(rig, agent, await agent.activate_flash())
        await session.settle(SETTLE_S)
        results[f"boot with {BONDS - 1} bonds"] = _diff(before, await agent.stats())
        await event("re-encryption after boot", lambda: session.reencrypt(2))
    return results


def measure(fs: str) -> dict[str, Wear]:
    """Wear per event on a fresh ``fs`` image (one boot, then a second one)."""
    logging.getLogger("bumble").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(asyncio.wait_for(_measure(fs, Path(tmp)), 600))


def format_table(tables: dict[str, dict[str, Wear]]) -> str:
    systems = list(tables)
    events = list(next(iter(tables.values())))
    width = max(len(e) for e in events)
    head = [f"{'event':<{width}}"]
    for fs in systems:
        head.append(f"{fs + ' erases':>12} {'programs':>9} {'bytes':>8}")
    lines = [" | ".join(head)]
    for event in events:
        cells = [f"{event:<{width}}"]
        for fs in systems:
            w = tables[fs].get(event)
            if w is None:
                cells.append(f"{'-':>12} {'-':>9} {'-':>8}")
            else:
                cells.append(f"{w.erases:>12.4g} {w.programs:>9.4g} {w.bytes_programmed:>8.4g}")
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mpoverlay.wear", description=__doc__)
    parser.add_argument("--micropy-dir", default=os.environ.get("MICROPY_DIR") or None)
    parser.add_argument("--fs", default="lfs2,fat", help="comma-separated: lfs2, fat")
    parser.add_argument("--no-build", action="store_true", help="use the built firmware as is")
    args = parser.parse_args(argv)
    if not args.no_build:
        build_unix(prepared_tree(args.micropy_dir, allow_fetch=False), "btstack")
    tables = {fs: measure(fs) for fs in args.fs.split(",")}
    print("== flash wear per bond event (4 KB blocks; counter differences) ==")
    print(format_table(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
