"""Space is counted as the file system allocates it: many small files take whole blocks (and inodes),
so the check before an install, `install --dry-run`, `status` and `gc` count allocated bytes where they
speak of the disk (and say which figure is file content); a disk that fills anyway is one line naming
the file system and what to do.

Uses size-limited tmpfs mounts (the tests run as root in CI), real file systems that really fill up.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.api.sizes import format_size
from dscache.cli.app import main
from dscache.store.paths import CachePaths
from tests.factories import make_tree, publish_archives, tmpfs

KEY = VersionKey("objects", "many", "v1")
SMALL = 400  # files of 10 bytes: 4000 bytes of content, 400 blocks of 4 KiB on tmpfs


@pytest.fixture
def one_mib(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "small", "1m") as mount:
        yield mount


def _many(tmp_path: Path) -> Path:
    remote = tmp_path / "remote"
    make_tree(remote / KEY.rel, {f"d{i // 100}/f{i:04d}.txt": f"file {i:04d}\n"[:10] for i in range(SMALL)})
    return remote


def _argv(cache: Path, remote: Path) -> list[str]:
    return ["--cache", str(cache), "--source", f"file://{remote}", "--layout", "Files", "--version", str(KEY)]


def test_many_small_files_are_refused_up_front_by_their_blocks(
    tmp_path: Path, one_mib: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote, cache = _many(tmp_path), one_mib / "cache"
    assert main(["install", "--dry-run", "--json", *_argv(cache, remote)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["blockSize"] == 4096 and report["contentBytesNeeded"] >= SMALL * 10
    assert report["spaceNeeded"] >= SMALL * 4096 > report["freeBytes"]
    assert main(["install", "--dry-run", *_argv(cache, remote)]) == 0
    assert "the install would fail: the versions need about" in capsys.readouterr().out
    assert main(["install", "-q", *_argv(cache, remote)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"dscache: error: not enough free space on {cache}")
    assert f"mounted at {one_mib}" in err and "each taking whole 4.0 KiB blocks" in err
    assert f"(dscache gc --cache {cache} --keep 0)" in err
    assert not (CachePaths(cache).staging_root / KEY.rel / "files").exists()  # nothing fetched


def test_a_disk_that_fills_during_an_install_names_the_file_system(
    tmp_path: Path, one_mib: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    for i in range(3):
        (tree / f"d{i}").mkdir(parents=True)
        (tree / f"d{i}" / "zeros.bin").write_bytes(bytes(1 << 20))  # 3 MiB extracted, unknown up front
    served = tmp_path / "served"
    publish_archives(tree, served, KEY, archive_size=1 << 30, dscache_manifest=False)
    argv = ["install", "-q", "--cache", str(one_mib), "--source", f"file://{served}", "--version", str(KEY)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err
    assert f"(the file system of {one_mib}, mounted at {one_mib}: it is full)" in err
    assert f"dscache gc --cache {one_mib} --keep 0), then run the install again" in err


def _allocated(root: Path) -> int:
    """What the regular files below `root` take on disk, as du counts them."""
    return sum(p.lstat().st_blocks * 512 for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def test_status_and_gc_count_the_blocks_files_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote, cache = _many(tmp_path), tmp_path / "cache"
    assert main(["install", "-q", *_argv(cache, remote)]) == 0
    version = CachePaths(cache).version_dir(KEY)
    on_disk = _allocated(version)
    assert on_disk >= SMALL * 4096 > 100 * SMALL * 10  # blocks, not the 4000 bytes of content
    stage = CachePaths(cache).staging_root / "objects" / "other" / "v1"
    make_tree(stage / "files", {f"f{i}.txt": "0123456789" for i in range(50)})  # an abandoned install
    staged = _allocated(stage)
    capsys.readouterr()
    assert main(["status", "--cache", str(cache), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    [row] = report["versions"]
    assert (row["storedDiskBytes"], row["bytes"]) == (on_disk, SMALL * 10)
    [staging] = report["staging"]
    assert (staging["diskBytes"], staging["bytes"]) == (staged, 500)
    assert main(["status", "--cache", str(cache)]) == 0
    assert (
        f"objects/other=v1: {format_size(staged)} on disk (500 B of file content)" in capsys.readouterr().out
    )
    os.utime(stage / "files", (0, 0))
    capsys.readouterr()
    assert main(["gc", "--cache", str(cache), "--keep", "0", "--staging-max-age", "0", "--json"]) == 0
    freed = json.loads(capsys.readouterr().out)
    assert (freed["removed"], freed["freedDiskBytes"], freed["freedBytes"]) == ([], staged, 500)
