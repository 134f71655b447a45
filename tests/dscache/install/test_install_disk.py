"""A full disk: caught up front from the manifest when possible, else fails cleanly mid-extraction.

Uses a size-limited tmpfs (the tests run as root in CI), a real filesystem that really fills up.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import CachePaths
from tests.factories import publish_archives, tmpfs
from tests.servers.files import FileServer

KEY = VersionKey("objects", "thor", "v1")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "small", "2m") as mount:
        yield mount


def compressible_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for i in range(6):
        path = tree / f"d{i}" / "zeros.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(1 << 20))  # 6 MiB extracted, a few KiB compressed
    return tree


def test_free_space_is_checked_before_any_download(
    tmp_path: Path, http_server: FileServer, small_fs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_archives(compressible_tree(tmp_path), http_server.root, KEY, archive_size=1 << 30)
    assert (
        main(["install", "--cache", str(small_fs), "--source", http_server.url, "--version", str(KEY)]) == 1
    )
    err = capsys.readouterr().err
    assert "not enough free space" in err and str(small_fs) in err
    assert not http_server.log.find("*.tar.zst")


def test_disk_full_during_extraction_fails_cleanly_and_resumes_later(
    tmp_path: Path, http_server: FileServer, small_fs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = compressible_tree(tmp_path)
    publish_archives(tree, http_server.root, KEY, archive_size=1 << 30, dscache_manifest=False)
    assert (
        main(["install", "--cache", str(small_fs), "--source", http_server.url, "--version", str(KEY)]) == 1
    )
    assert "No space left on device" in capsys.readouterr().err
    assert not CachePaths(small_fs).version_dir(KEY).exists()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
    assert (
        main(["install", "--cache", str(small_fs), "--source", http_server.url, "--version", str(KEY)]) == 0
    )
    assert (CachePaths(small_fs).version_dir(KEY) / "d5" / "zeros.bin").stat().st_size == 1 << 20
