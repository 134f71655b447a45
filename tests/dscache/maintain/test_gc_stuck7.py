"""gc when a version cannot be moved to the trash (real mounts: a read-only bind mount of the
version, the trash on its own tmpfs): it is left in place, whole; gc removes the other versions and
the stale staging, gives its summary, then one error line per path it could not remove naming the
path and the reason in words, exit 1."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree, publish_archives, tmpfs

V = [VersionKey("objects", "thor", f"v{i}") for i in (1, 2, 3)]
STALE = VersionKey("objects", "thor", "v9")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """v1, v2, v3 installed (the ref `default` names v3) and an abandoned staging dir of v9."""
    remote = tmp_path / "remote"
    for i, key in enumerate(V):
        tree = make_tree(tmp_path / f"t{i}", {"a/x.txt": 100 + i})
        publish_archives(tree, remote, key, archive_size=4096)
    cache = tmp_path / "cache"
    for key in V:
        assert (
            main(["install", "--cache", str(cache), "--source", f"file://{remote}", "--version", str(key)])
            == 0
        )
    (CachePaths(cache).staging_dir(STALE) / "archives").mkdir(parents=True)
    return cache


@contextmanager
def read_only_bind(path: Path) -> Iterator[None]:
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_read_only_version_is_named_and_the_rest_removed(cache: Path) -> None:
    paths = CachePaths(cache)
    with read_only_bind(paths.version_dir(V[0])):
        result = run("gc", "--cache", str(cache), "--keep", "0", "--staging-max-age", "0")
        assert result.code == 1, result
        assert "Traceback" not in result.err
        assert result.out.splitlines() == [
            "removed objects/thor=v2",
            "removed abandoned staging of objects/thor=v9",
            result.out.splitlines()[2],
        ]
        assert result.out.splitlines()[2].startswith("removed 1 version(s), kept 1, freed ")
        assert result.err.splitlines() == [
            "dscache: error: objects/thor/v1: not removed (left in place, whole): it is on a read-only "
            "file system (a read-only mount?)"
        ]
        assert (paths.version_dir(V[0]) / "a" / "x.txt").is_file()
    assert not paths.version_dir(V[1]).exists()
    assert paths.version_dir(V[2]).is_dir()
    assert not paths.staging_dir(STALE).exists()


def test_trash_on_another_file_system_is_said_in_words(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = CachePaths(cache)
    with tmpfs(paths.trash_dir, "1m"):
        capsys.readouterr()
        code = main(["gc", "--cache", str(cache), "--keep", "0", "--staging-max-age", "0", "--json"])
        out = json.loads(capsys.readouterr().out)
    assert code == 1
    reason = f"the trash is on another file system than the cache: {paths.trash_dir}"
    assert out["removed"] == []
    assert out["notRemoved"] == [
        {"path": "objects/thor/v1", "reason": reason},
        {"path": "objects/thor/v2", "reason": reason},
        {"path": ".dscache/staging/objects/thor/v9", "reason": reason},
    ]
    for key in V:
        assert (paths.version_dir(key) / "a" / "x.txt").is_file()
        assert paths.version_dir(key).stat().st_mode & 0o222 == 0  # still read-only, as published
    assert paths.staging_dir(STALE).is_dir()
