"""Fixtures for the prepare tests: a cache, a scratch and a links dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dscache.prepare.prepare_helpers import Dirs


@pytest.fixture
def dirs(tmp_path: Path) -> Dirs:
    d = Dirs(tmp_path / "cache", tmp_path / "scratch", tmp_path / "links")
    d.cache.mkdir()
    d.scratch.mkdir()
    return d
