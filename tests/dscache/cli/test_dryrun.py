"""`dscache install --dry-run`: versions, items and bytes that would be fetched; nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree, publish_archives
from tests.servers.files import FileServer

V1 = VersionKey("objects", "toys", "v1")
V2 = VersionKey("scenes", "kitchen", "v2")


def _snapshot(root: Path) -> dict[str, tuple[int, float]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime) for p in root.rglob("*")}


def _archive_bytes(remote: Path, key: VersionKey) -> tuple[int, int]:
    """(count, total size) of the version's archives, read straight from the remote directory."""
    sizes = [p.stat().st_size for p in (remote / key.rel).glob("*.tar.zst")]
    return len(sizes), sum(sizes)


def test_dry_run_reports_what_would_be_fetched_and_writes_nothing(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    publish_archives(make_tree(tmp_path / "t1", {f"a/{i}.bin": 5000 for i in range(6)}), remote, V1, 8192)
    publish_archives(make_tree(tmp_path / "t2", {f"b/{i}.bin": 7000 for i in range(5)}), remote, V2, 8192)
    cache = tmp_path / "cache"
    source = ["--source", f"file://{remote}", "--version", str(V1), "--version", str(V2)]

    fresh = run("install", "--dry-run", "--json", "--cache", str(cache), *source)
    assert fresh.code == 0, fresh
    assert not cache.exists()  # not even the cache directory or its lock
    report = json.loads(fresh.out)
    items1, bytes1 = _archive_bytes(remote, V1)
    items2, bytes2 = _archive_bytes(remote, V2)
    assert (items1, items2) == (6, 5)  # one 5000- or 7000-byte file per archive of at most 8 KiB
    assert [v["version"] for v in report["versions"]] == [str(V1), str(V2)]
    assert [
        (v["state"], v["items"], v["bytes"], v["itemsToFetch"], v["bytesToFetch"]) for v in report["versions"]
    ] == [
        ("missing", items1, bytes1, items1, bytes1),
        ("missing", items2, bytes2, items2, bytes2),
    ]
    assert (report["itemsToFetch"], report["bytesToFetch"]) == (items1 + items2, bytes1 + bytes2)
    assert report["spaceNeeded"] >= 30000 + 35000 and report["refChange"] == "create"
    assert report["dryRun"] is True and report["ref"] == "default"

    assert (
        run("install", "--cache", str(cache), "--source", f"file://{remote}", "--version", str(V1)).code == 0
    )
    before = _snapshot(cache)
    both = run("install", "--dry-run", "--json", "--cache", str(cache), *source)
    assert both.code == 0
    report = json.loads(both.out)
    assert [(v["version"], v["state"], v["bytesToFetch"]) for v in report["versions"]] == [
        (str(V1), "published", 0),
        (str(V2), "missing", bytes2),
    ]
    assert report["refChange"] == "update" and report["bytesToFetch"] == bytes2
    assert _snapshot(cache) == before  # no lock file, no staging, no ref written

    text = run("install", "--dry-run", "--cache", str(cache), *source)
    assert text.code == 0 and text.err == ""
    assert f"{V1}: published, nothing to fetch" in text.out
    assert f"{V2}: {items2} of {items2} item(s)" in text.out and "ref default: would be updated" in text.out
    assert _snapshot(cache) == before


def test_dry_run_counts_what_an_interrupted_install_left_in_staging(
    http_server: FileServer, tmp_path: Path
) -> None:
    publish_archives(
        make_tree(tmp_path / "t", {f"a/{i}.bin": 6000 for i in range(4)}), http_server.root, V1, 8192
    )
    cache = tmp_path / "cache"
    argv = ["--cache", str(cache), "--source", http_server.url, "--version", str(V1), "--jobs", "1"]
    names = sorted(p.name for p in (http_server.root / V1.rel).glob("*.tar.zst"))
    http_server.faults.status(404, times=None, path=f"*/{names[-1]}")  # the last archive fails for good
    assert run("install", *argv).code == 1
    staged = [p for p in CachePaths(cache).staging_dir(V1).rglob("*") if p.is_file()]
    assert staged  # some archives are done in staging
    http_server.faults.clear()
    before = _snapshot(cache)
    archive_gets = len(http_server.log.find("*.tar.zst", method="GET"))
    report = json.loads(run("install", "--dry-run", "--json", *argv).out)
    [version] = report["versions"]
    sizes = {p.name: p.stat().st_size for p in (http_server.root / V1.rel).glob("*.tar.zst")}
    assert version["items"] == len(names) and version["bytes"] == sum(sizes.values())
    assert version["itemsStaged"] == len(names) - 1
    assert version["bytesStaged"] == sum(sizes.values()) - sizes[names[-1]]
    assert (version["itemsToFetch"], version["bytesToFetch"]) == (1, sizes[names[-1]])
    assert _snapshot(cache) == before
    assert len(http_server.log.find("*.tar.zst", method="GET")) == archive_gets  # metadata only


def test_dry_run_on_a_missing_remote_version_fails_cleanly(tmp_path: Path) -> None:
    result = run("install", "--dry-run", "--cache", str(tmp_path / "c"), "--source", f"file://{tmp_path}",
                 "--version", str(V1))  # fmt: skip
    assert result.code == 1 and result.err.startswith("dscache: error: version objects/toys=v1 not found")
    assert os.listdir(tmp_path) == []
