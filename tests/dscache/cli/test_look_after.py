"""Looking after a cache as a newcomer does: a cache nested in another, staged data of an interrupted
install, a tampered version and its repair."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.api.spec import DatasetCacheSpec
from dscache.cli.render import JsonSink
from dscache.install.pipeline import InstallError, install
from dscache.remotes.base import Pin, RemoteError
from dscache.remotes.file import FileRemote
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import run
from tests.factories import content_for, make_tree, publish_archives, version_items
from tests.servers.files import FileServer

OWN = VersionKey("objects", "thor", "v1")
INNER = VersionKey("objects", "thor", "v9")


def _install(cache: Path, remote: Path, key: VersionKey, *more: str) -> None:
    source = ["--source", f"file://{remote}", "--version", str(key)]
    result = run("install", "--cache", str(cache), *source, *more)
    assert result.code == 0, result


def _two_caches(tmp_path: Path) -> tuple[Path, Path]:
    """An outer cache holding OWN, and a second cache (holding INNER) moved into its directory."""
    remote = tmp_path / "remote"
    for key in (OWN, INNER):
        tree = make_tree(tmp_path / key.version, {"a.txt": 300, "b/c.bin": 5000})
        publish_archives(tree, remote, key, 4096)
    outer, elsewhere = tmp_path / "cache", tmp_path / "second"
    _install(outer, remote, OWN)
    _install(elsewhere, remote, INNER, "--ref", "second")
    inner = outer / "old-cache"
    elsewhere.rename(inner)
    return outer, inner


def test_status_verify_and_gc_leave_a_nested_cache_alone(tmp_path: Path) -> None:
    outer, inner = _two_caches(tmp_path)
    status = run("status", "--cache", str(outer), "--json")
    assert status.code == 0, status
    report = json.loads(status.out)
    assert [r["version"] for r in report["versions"]] == ["v1"]
    assert report["ignored"] == [{"path": str(inner), "version": None, "nestedCache": True}]
    assert f"dscache: ignored {inner}: a cache nested in this one" in status.err

    text = run("status", "--cache", str(outer))
    assert "v9" not in text.out and f"see dscache status --cache {inner}" in text.err

    verify = run("verify", "--cache", str(outer))
    assert verify.code == 0, verify
    assert verify.out.splitlines() == [f"ok       {OWN}", "1 of 1 version(s) intact"]
    assert f"dscache: ignored {inner}" in verify.err

    gc = run("gc", "--cache", str(outer), "--keep", "0", "--json")
    assert gc.code == 0, gc
    assert (json.loads(gc.out)["removed"], json.loads(gc.out)["kept"]) == ([], [str(OWN)])
    release = run("release", "--cache", str(outer), "--ref", "default")
    assert release.code == 0, release
    assert not CachePaths(outer).version_dir(OWN).exists()
    assert CachePaths(inner).complete_record(INNER).is_file()  # the nested cache's version is untouched
    assert run("verify", "--cache", str(inner)).code == 0


def test_a_version_copied_elsewhere_in_the_cache_is_not_listed_as_one_of_its_versions(tmp_path: Path) -> None:
    outer, inner = _two_caches(tmp_path)
    stray = outer / "backup" / "thor-v9"
    shutil.copytree(CachePaths(inner).version_dir(INNER), stray, symlinks=True)
    status = run("status", "--cache", str(outer), "--json")
    report = json.loads(status.out)
    assert [r["version"] for r in report["versions"]] == ["v1"]
    assert {"path": str(stray), "version": str(INNER), "nestedCache": False} in report["ignored"]
    assert f"dscache: ignored {stray}: a record of version {INNER} where that version does not belong" in (
        status.err
    )


BIG = VersionKey("models", "llm", "v1")
MIB = 1 << 20


class _CutOnce(FileRemote):
    """A local remote whose first download breaks after its first chunk (1 MiB), as a connection lost
    for longer than the retries last: the install fails and leaves its partial file in staging."""

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        marker = self._root.parent / "cut"
        for chunk in super().stream(path, offset, length, pin):
            yield chunk
            if not marker.exists():
                marker.touch()
                raise RemoteError(f"{path}: connection lost (test)")


def _interrupted(tmp_path: Path) -> tuple[Path, Path, DatasetCacheSpec]:
    """A Files install of one 3 MiB file cut after its first MiB: (cache, remote, spec)."""
    remote = tmp_path / "remote"
    make_tree(remote / BIG.rel, {"weights.bin": content_for("w", 3 * MIB)})
    spec = DatasetCacheSpec.model_validate(
        {"source": {"file": {"path": str(remote)}}, "layout": "Files", "versions": version_items(str(BIG))}
    )
    cache, cut = tmp_path / "cache", _CutOnce(remote)
    with pytest.raises(InstallError, match="connection lost"):
        install(spec, cache, "default", JsonSink(io.StringIO()), jobs=1, remote_factory=lambda _s: cut)
    return cache, remote, spec


def test_status_shows_what_an_interrupted_install_staged_and_gc_removes_it_when_abandoned(
    tmp_path: Path,
) -> None:
    cache, _remote, _spec = _interrupted(tmp_path)
    report = json.loads(run("status", "--cache", str(cache), "--json").out)
    [stage] = report["staging"]
    assert {k: stage[k] for k in ("version", "bytes", "items", "partialFiles", "published")} == {
        "version": str(BIG), "bytes": MIB, "items": 0, "partialFiles": 1, "published": False,
    }  # fmt: skip
    assert 0 <= stage["ageSeconds"] < 60
    text = run("status", "--cache", str(cache))
    assert "`dscache install` of the version keeps the finished items and resumes" in text.out
    assert "--staging-max-age" in text.out
    assert re.search(
        rf"  {re.escape(str(BIG))}: [0-9.]+ MiB on disk \(1\.0 MiB of file content\): 0 finished item\(s\), "
        rf"1 partial file\(s\) \(1 resumable\); "
        rf"a rerun reuses up to 1\.0 MiB; last touched \d+s ago",
        text.out,
    ), text.out

    assert json.loads(run("gc", "--cache", str(cache), "--keep", "0", "--json").out)["staleStaging"] == []
    stage_dir = CachePaths(cache).staging_dir(BIG)
    week_ago = time.time() - 8 * 24 * 3600
    for p in (stage_dir, *stage_dir.rglob("*")):
        os.utime(p, (week_ago, week_ago))
    gc = json.loads(run("gc", "--cache", str(cache), "--keep", "0", "--json").out)
    assert gc["staleStaging"] == [{"version": str(BIG), "path": str(stage_dir)}]  # Files staging too
    assert gc["freedBytes"] >= MIB
    assert not stage_dir.exists()
    assert json.loads(run("status", "--cache", str(cache), "--json").out)["staging"] == []


def test_status_says_how_long_ago_staging_was_touched_as_prepare_says_it_of_a_copy(tmp_path: Path) -> None:
    """61 minutes read `1h01m ago` in `status` as in prepare's eviction line (test_holds.py)."""
    cache, _remote, _spec = _interrupted(tmp_path)
    stage_dir = CachePaths(cache).staging_dir(BIG)
    then = time.time() - 61 * 60
    for p in (stage_dir, *stage_dir.rglob("*")):
        os.utime(p, (then, then))
    assert "; last touched 1h01m ago" in run("status", "--cache", str(cache)).out


def test_dry_run_after_an_interrupted_install_counts_the_partial_file_as_staged(tmp_path: Path) -> None:
    cache, remote, _spec = _interrupted(tmp_path)
    argv = ["--cache", str(cache), "--source", f"file://{remote}", "--layout", "Files", "--version", str(BIG)]
    dry = run("install", "--dry-run", "--json", *argv)
    assert dry.code == 0, dry
    [version] = json.loads(dry.out)["versions"]
    assert (version["bytes"], version["bytesStaged"], version["bytesToFetch"]) == (3 * MIB, MIB, 2 * MIB)
    assert (version["itemsStaged"], version["partialFiles"], version["itemsToFetch"]) == (0, 1, 1)
    text = run("install", "--dry-run", *argv)
    assert (
        f"{BIG}: 1 of 1 item(s), 2.0 MiB to fetch (1.0 MiB already in staging: 1 partial file(s) to resume)"
        in text.out
    )

    (remote / BIG.rel / "weights.bin").write_bytes(content_for("other", 3 * MIB))  # replaced: not resumed
    [version] = json.loads(run("install", "--dry-run", "--json", *argv).out)["versions"]
    assert (version["bytesStaged"], version["bytesToFetch"]) == (0, 3 * MIB)


def test_repair_fetches_only_the_damaged_archives_and_publishes_a_fresh_copy(
    http_server: FileServer, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "t", {f"d{i}/f.bin": 6000 for i in range(4)})
    publish_archives(tree, http_server.root, OWN, 8192)  # one 6000-byte file per archive
    cache = tmp_path / "cache"
    argv = ["--cache", str(cache), "--source", http_server.url, "--version", str(OWN)]
    assert run("install", *argv).code == 0
    version = CachePaths(cache).version_dir(OWN)
    before = json.loads((version / ".dscache-complete.json").read_text())
    reader = (version / "d1" / "f.bin").open("rb")  # a pod reading the version while it is repaired
    os.chmod(version / "d0", 0o755)
    (version / "d0" / "f.bin").unlink()  # tampered: one file gone
    damaged = run("verify", "--cache", str(cache))
    assert damaged.code == 1 and "to repair, run each install again with --repair" in damaged.err
    assert f"  {OWN}: dscache install {' '.join(argv)} --ref default --repair\n" in damaged.err

    again = run("install", *argv)
    assert again.code == 0
    assert f"dscache: warning: {OWN} is present but differs from what was installed (1 missing" in again.err
    assert "run this install again with --repair" in again.err

    http_server.log.clear()
    repaired = run("install", *argv, "--repair", "--json")
    assert repaired.code == 0, repaired
    fetched = [r.path for r in http_server.log.find("*.tar.zst", method="GET")]
    assert fetched == [f"/{OWN.rel}/d0_0000.tar.zst"]  # of 4 archives, only the damaged one's
    assert run("verify", "--cache", str(cache)).code == 0
    assert (version / "d0" / "f.bin").read_bytes() == (tree / "d0" / "f.bin").read_bytes()
    after = json.loads((version / ".dscache-complete.json").read_text())
    assert after["files"] == before["files"] and after["bytes"] == before["bytes"]
    assert reader.read() == (tree / "d1" / "f.bin").read_bytes()  # the old copy's open file still reads
    reader.close()
    assert os.stat(version / "d1" / "f.bin").st_nlink == 1  # the old copy is gone (trash emptied)
    assert run("install", *argv, "--repair").err.startswith("dscache: nothing to repair: no published")


def test_repair_of_a_files_version_links_the_intact_files_and_fetches_the_changed_one(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    tree = make_tree(remote / BIG.rel, {"weights.bin": 70_000, "config.json": 300, "sub/tok.txt": 900})
    cache = tmp_path / "cache"
    argv = ["--cache", str(cache), "--source", f"file://{remote}", "--layout", "Files", "--version", str(BIG)]
    assert run("install", *argv).code == 0
    version = CachePaths(cache).version_dir(BIG)
    inodes = {name: os.stat(version / name).st_ino for name in ("weights.bin", "config.json", "sub/tok.txt")}
    os.chmod(version, 0o755)
    (version / "weights.bin").unlink()
    (version / "weights.bin").write_bytes(b"truncated")  # replaced by a shorter file
    tampered = os.stat(version / "weights.bin").st_ino  # alive until the swap: the fresh file's differs
    assert run("install", *argv).err.count("--repair") == 1

    assert run("install", *argv, "--repair").code == 0
    assert run("verify", "--cache", str(cache)).code == 0
    assert (version / "weights.bin").read_bytes() == (tree / "weights.bin").read_bytes()
    assert os.stat(version / "weights.bin").st_ino != tampered  # (the original's number may be reused)
    # the intact files were linked from the damaged copy, not fetched again: same inodes
    assert os.stat(version / "config.json").st_ino == inodes["config.json"]
    assert os.stat(version / "sub/tok.txt").st_ino == inodes["sub/tok.txt"]
    assert not os.listdir(CachePaths(cache).trash_dir)


def test_a_version_that_lost_its_completion_record_is_installed_again(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    tree = make_tree(remote / BIG.rel, {"weights.bin": 7000, "config.json": 300})
    cache = tmp_path / "cache"
    argv = ["--cache", str(cache), "--source", f"file://{remote}", "--layout", "Files", "--version", str(BIG)]
    assert run("install", *argv).code == 0
    version = CachePaths(cache).version_dir(BIG)
    os.chmod(version, 0o755)
    (version / ".dscache-complete.json").unlink()  # no longer published: the install must redo it
    again = run("install", *argv)
    assert again.code == 0, again
    assert f"published {BIG}: 2 files" in again.err
    assert (version / "weights.bin").read_bytes() == (tree / "weights.bin").read_bytes()
    assert run("verify", "--cache", str(cache)).code == 0
