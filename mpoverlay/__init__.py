"""Build tooling: pinned upstream MicroPython + our overlay -> firmware and tests.

Modules, one job each:

- ``lock``: read ``upstream.lock`` (what upstream we build on).
- ``upstream``: find or fetch an upstream tree and check it against the lock.
- ``overlay``: prepare a separate build tree: upstream + our patches + our files.
- ``build``: build the unix (BTstack / NimBLE over H4) and rp2 firmware.
- ``multitest``: run upstream's ``run-multitests.py`` over the virtual radio.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build"
