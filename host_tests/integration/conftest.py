"""Integration suite: upstream's multi_bluetooth tests over the virtual radio.

Runs only when an upstream tree is available without network: ``MICROPY_DIR``
or a tree fetched earlier into ``build/upstream``.  Otherwise every test here
is skipped with that reason (the host tests still run).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from integration_support import NO_TREE_REASON

from mpoverlay.build import UNIX_VARIANTS, build_unix
from mpoverlay.tree import available_upstream, prepared_tree


@pytest.fixture(scope="session")
def built_tree() -> Path:
    """build/tree prepared from the upstream tree, with both unix variants built."""
    micropy_dir = os.environ.get("MICROPY_DIR")
    if available_upstream(micropy_dir) is None:
        pytest.skip(NO_TREE_REASON)
    tree = prepared_tree(micropy_dir, allow_fetch=False)
    for variant in UNIX_VARIANTS:
        build_unix(tree, variant)
    return tree
