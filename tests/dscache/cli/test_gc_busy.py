"""gc and release when an entry cannot be deleted yet (a file a pod holds open on NFS, see busy.py).

The busy entry is left in the trash with a warning; everything else is still removed, the command
exits 0, and a later gc or release finishes the deletion once the file is released.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import CachePaths
from tests.dscache.busy import pin, unpin_all, unpinned_at_exit
from tests.factories import make_tree, publish_archives

V = [VersionKey("objects", "thor", f"v{i}") for i in (1, 2, 3)]
EPERM = "Operation not permitted"


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Path]:
    remote = tmp_path / "remote"
    for i, key in enumerate(V):
        tree = make_tree(tmp_path / f"t{i}", {"a/x.txt": 100 + i, "b/y.bin": 5000})
        publish_archives(tree, remote, key, archive_size=4096)
    cache = tmp_path / "cache"
    for key in V:  # v3 is the newest and the ref `default` points at it
        assert (
            main(["install", "--cache", str(cache), "--source", f"file://{remote}", "--version", str(key)])
            == 0
        )
    with unpinned_at_exit(tmp_path):
        yield cache


def gc_json(cache: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[dict[str, object], str]:
    capsys.readouterr()
    assert main(["gc", "--cache", str(cache), "--json", *args]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def trash(cache: Path) -> list[str]:
    return sorted(os.listdir(CachePaths(cache).trash_dir))


def test_busy_entry_in_the_trash_does_not_stop_later_gcs(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    busy = CachePaths(cache).trash_dir / "objects__thor__v0.0a1b2c3d"  # left by an earlier gc
    (busy / "d").mkdir(parents=True)
    (busy / "d" / "open.bin").write_bytes(b"held open by a pod")
    (busy / "d" / "closed.bin").write_bytes(b"")
    pin(busy / "d" / "open.bin")
    for _ in range(2):  # every later gc goes on removing what it can
        report, err = gc_json(cache, capsys, "--keep", "0")
        assert report["left"] == [
            {
                "path": ".dscache/trash/objects__thor__v0.0a1b2c3d",
                "blocker": ".dscache/trash/objects__thor__v0.0a1b2c3d/d/open.bin",
                "reason": EPERM,
            }
        ]
        assert err.count("dscache: warning: ") == 1 and "d/open.bin: Operation not permitted" in err
    assert report["removed"] == [] and not CachePaths(cache).version_dir(V[1]).exists()
    assert trash(cache) == ["objects__thor__v0.0a1b2c3d"]
    assert sorted(p.name for p in busy.rglob("*")) == ["d", "open.bin"]  # the rest was deleted
    unpin_all(cache)
    report, err = gc_json(cache, capsys, "--keep", "0")
    assert report["left"] == [] and err == "" and trash(cache) == []


def test_busy_file_in_a_version_being_removed(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = CachePaths(cache)
    pin(paths.version_dir(V[0]) / "a" / "x.txt")
    capsys.readouterr()
    assert main(["gc", "--cache", str(cache), "--keep", "0"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[:2] == ["removed objects/thor=v1", "removed objects/thor=v2"] and len(lines) == 3
    summary = (
        r"removed 2 version\(s\), kept 1, freed [0-9.]+ KiB on disk \([0-9.]+ KiB of file content\); "
        r"1 deletion\(s\) left for a later run"
    )
    assert re.fullmatch(summary, lines[2]), lines[2]
    (warning,) = err.splitlines()
    (grave,) = trash(cache)
    assert grave.startswith("objects__thor__v1.")
    assert warning.startswith(
        f"dscache: warning: .dscache/trash/{grave} is left for a later run: "
        f".dscache/trash/{grave}/a/x.txt: {EPERM}"
    )
    assert not paths.version_dir(V[0]).exists() and not paths.version_dir(V[1]).exists()  # unpublished
    molmo = json.loads((cache / "mjthor_data_type_to_source_to_versions.json").read_text())
    assert molmo["objects"]["thor"] == ["v3"]
    unpin_all(cache)
    report, _ = gc_json(cache, capsys, "--keep", "0")
    assert report["left"] == [] and trash(cache) == []


def test_busy_file_in_abandoned_staging(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = VersionKey("objects", "thor", "crashed")
    stage = CachePaths(cache).staging_dir(key)
    (stage / "archives" / "a.tar.zst.d").mkdir(parents=True)
    (stage / "archives" / "a.tar.zst.d" / "big.bin").write_bytes(b"x" * 100)
    (stage / "archives" / "b.tar.zst.done.json").write_text("{}")
    pin(stage / "archives" / "a.tar.zst.d" / "big.bin")
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(stage / "archives", (week_ago, week_ago))
    report, err = gc_json(cache, capsys, "--keep", "0")
    assert report["staleStaging"] == [{"version": "objects/thor=crashed", "path": str(stage)}]
    assert report["removed"] == [str(V[0]), str(V[1])]  # the gc went on
    assert not stage.exists()  # gone from staging whole: a rerun cannot resume from half of it
    (left,) = report["left"]  # type: ignore[misc]
    assert left["path"].startswith(".dscache/trash/staging__objects__thor__crashed.")
    assert left["blocker"] == f"{left['path']}/archives/a.tar.zst.d/big.bin" and left["reason"] == EPERM
    assert "big.bin" in err
    unpin_all(cache)
    report, _ = gc_json(cache, capsys, "--keep", "0")
    assert report["left"] == [] and trash(cache) == []


def test_busy_file_in_a_released_version(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = CachePaths(cache)
    pin(paths.version_dir(V[2]) / "b" / "y.bin")
    capsys.readouterr()
    assert main(["release", "--cache", str(cache), "--ref", "default", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["removed"] == [str(V[2])] and report["found"] is True
    (left,) = report["left"]
    assert left["path"].startswith(".dscache/trash/objects__thor__v3.")
    assert left["blocker"] == f"{left['path']}/b/y.bin" and left["reason"] == EPERM
    assert "b/y.bin: Operation not permitted" in captured.err
    assert not paths.version_dir(V[2]).exists() and not paths.ref_path("default").exists()
    unpin_all(cache)
    report, _ = gc_json(cache, capsys, "--keep", "5")
    assert report["left"] == [] and trash(cache) == []
