"""Fixtures for the tooling tests (helpers live in tooling_fakes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tooling_fakes import fake_repo as _fake_repo
from tooling_fakes import fake_upstream as _fake_upstream


@pytest.fixture
def fake_upstream(tmp_path: Path) -> Path:
    return _fake_upstream(tmp_path)


@pytest.fixture
def fake_repo(tmp_path: Path, fake_upstream: Path) -> Path:
    return _fake_repo(tmp_path, fake_upstream)
