"""The consistency check that decides whether a scratch copy is trusted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dscache.prepare.consistency import is_consistent
from dscache.store.paths import INVENTORY
from dscache.store.records import CompleteRecord, read_complete
from tests.dscache.prepare.prepare_helpers import publish_version

FILES = {"a/b/f.bin": b"12345", "g.txt": b"g"}


@pytest.fixture
def version(tmp_path: Path) -> tuple[Path, CompleteRecord]:
    path = publish_version(tmp_path, "objects/thor=v1", FILES, links={"a/l": "b/f.bin"})
    record = read_complete(path)
    assert record is not None
    for dirpath, _, _ in os.walk(path):
        os.chmod(dirpath, 0o755)
    return path, record


def test_intact_version_passes(version: tuple[Path, CompleteRecord]) -> None:
    assert is_consistent(*version)


def test_same_count_and_bytes_but_a_file_swapped_for_a_link_fails(
    version: tuple[Path, CompleteRecord],
) -> None:
    path, record = version
    (path / "g.txt").unlink()
    os.symlink("a/b/f.bin", path / "g.txt")
    assert not is_consistent(path, record)


def test_size_moved_between_files_fails(version: tuple[Path, CompleteRecord]) -> None:
    path, record = version
    for rel, content in (("a/b/f.bin", b"1234"), ("g.txt", b"gg")):  # total bytes unchanged
        os.chmod(path / rel, 0o644)
        (path / rel).write_bytes(content)
    assert not is_consistent(path, record)


def test_inventory_disagreeing_with_the_record_fails(version: tuple[Path, CompleteRecord]) -> None:
    path, record = version
    os.chmod(path / INVENTORY, 0o644)
    (path / INVENTORY).write_text(json.dumps({"files": {"g.txt": 1}, "links": {}}))
    (path / "a" / "b" / "f.bin").unlink()
    assert not is_consistent(path, record)


def test_without_inventory_the_walk_is_counted(version: tuple[Path, CompleteRecord]) -> None:
    path, record = version
    (path / INVENTORY).unlink()
    assert is_consistent(path, record)
    (path / "extra.txt").write_bytes(b"x")
    assert not is_consistent(path, record)


def test_missing_copy_fails(tmp_path: Path, version: tuple[Path, CompleteRecord]) -> None:
    assert not is_consistent(tmp_path / "gone", version[1])
