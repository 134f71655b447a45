"""`dscache status`, `verify` and `gc` on a real installed cache."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import CachePaths
from tests.factories import make_tree, publish_archives

V = [VersionKey("objects", "thor", f"v{i}") for i in (1, 2, 3)]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    remote = tmp_path / "remote"
    for i, key in enumerate(V):
        tree = make_tree(tmp_path / f"t{i}", {"a/x.txt": 100 + i, "b/y.bin": 5000})
        publish_archives(tree, remote, key, archive_size=4096)
    cache = tmp_path / "cache"
    for key in V:  # installed one after the other: v3 is the newest and the ref points at it
        assert (
            main(["install", "--cache", str(cache), "--source", f"file://{remote}", "--version", str(key)])
            == 0
        )
    return cache


def test_status_lists_versions_sizes_and_refs(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["status", "--cache", str(cache), "--json"]) == 0
    rows = {r["version"]: r for r in json.loads(capsys.readouterr().out)["versions"]}
    assert set(rows) == {"v1", "v2", "v3"}
    assert rows["v3"]["refs"] == ["default"] and rows["v1"]["refs"] == []
    assert rows["v1"]["files"] > 2 and rows["v1"]["bytes"] >= 5100
    assert main(["status", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "thor" in out and "default" in out


def test_verify_names_what_differs(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--cache", str(cache)]) == 0
    v2 = CachePaths(cache).version_dir(V[1])
    os.chmod(v2 / "a", 0o755)
    os.chmod(v2 / "a" / "x.txt", 0o644)
    (v2 / "a" / "x.txt").write_text("tampered")
    (v2 / "b" / "y.bin").unlink() if os.access(v2 / "b", os.W_OK) else None
    (v2 / "a" / "extra").write_text("?")
    capsys.readouterr()
    assert main(["verify", "--cache", str(cache), "--json"]) == 1
    report = {v["version"]: v for v in json.loads(capsys.readouterr().out)["versions"]}
    bad = report[str(V[1])]
    assert not bad["ok"] and bad["changed"] == ["a/x.txt"] and bad["extra"] == ["a/extra"]
    assert report[str(V[0])]["ok"] and report[str(V[2])]["ok"]
    assert main(["verify", "--cache", str(cache)]) == 1
    assert "a/x.txt" in capsys.readouterr().err


def test_gc_keeps_referenced_and_newest_and_protected(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = CachePaths(cache)
    assert main(["gc", "--cache", str(cache), "--keep", "0", "--dry-run"]) == 0
    assert all(paths.version_dir(k).exists() for k in V)
    assert main(["gc", "--cache", str(cache), "--keep", "0", "--protect", str(V[0])]) == 0
    assert paths.version_dir(V[0]).exists()  # protected (in use by a pod)
    assert not paths.version_dir(V[1]).exists()
    assert paths.version_dir(V[2]).exists()  # referenced
    molmo = json.loads((cache / "mjthor_data_type_to_source_to_versions.json").read_text())
    assert molmo["objects"]["thor"] == ["v1", "v3"]
    assert main(["gc", "--cache", str(cache), "--keep", "1"]) == 0
    assert paths.version_dir(V[0]).exists()
    assert not list(paths.trash_dir.iterdir())


def test_gc_never_exposes_half_a_version(cache: Path) -> None:
    paths = CachePaths(cache)
    target = paths.version_dir(V[0])
    expected = {p.relative_to(target) for p in target.rglob("*")}
    partial: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                seen = {p.relative_to(target) for p in target.rglob("*")}
            except FileNotFoundError:
                continue
            if seen and seen != expected:
                partial.append(len(seen))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert main(["gc", "--cache", str(cache), "--keep", "0"]) == 0
    finally:
        stop.set()
        watcher.join()
    assert not target.exists() and partial == []


def test_gc_removes_only_abandoned_staging(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = [VersionKey("objects", "thor", v) for v in ("old", "recent")]
    cache = tmp_path / "cache"
    stages = {}
    for key in keys:  # a crashed install of each leaves staging behind, nothing published
        stage = CachePaths(cache).staging_dir(key) / "archives"
        stage.mkdir(parents=True)
        (stage / "a.tar.zst.done.json").write_text("{}")
        stages[key.version] = stage.parent
    week_ago = time.time() - 8 * 24 * 3600
    for p in (stages["old"], *stages["old"].rglob("*")):
        os.utime(p, (week_ago, week_ago))
    assert main(["gc", "--cache", str(cache), "--keep", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["staleStaging"] == [{"version": "objects/thor=old", "path": str(stages["old"])}]
    assert not stages["old"].exists() and stages["recent"].exists()


def test_staging_is_named_by_its_version_as_everywhere_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    stage = CachePaths(cache).staging_dir(VersionKey("objects", "objaverse/part1", "v3"))
    (stage / "archives").mkdir(parents=True)
    (stage / "archives" / "a.tar.zst.done.json").write_text("{}")
    assert main(["status", "--cache", str(cache), "--json"]) == 0
    [staged] = json.loads(capsys.readouterr().out)["staging"]
    assert (staged["version"], staged["path"]) == ("objects/objaverse/part1=v3", str(stage))
    assert main(["status", "--cache", str(cache)]) == 0
    assert "\n  objects/objaverse/part1=v3: " in capsys.readouterr().out
    week_ago = time.time() - 8 * 24 * 3600
    for p in (stage, *stage.rglob("*")):
        os.utime(p, (week_ago, week_ago))
    assert main(["gc", "--cache", str(cache), "--keep", "0", "--json", "--dry-run"]) == 0
    stale = json.loads(capsys.readouterr().out)["staleStaging"]
    assert stale == [{"version": "objects/objaverse/part1=v3", "path": str(stage)}]
    assert main(["gc", "--cache", str(cache), "--keep", "0"]) == 0
    assert "removed abandoned staging of objects/objaverse/part1=v3" in capsys.readouterr().out
