"""Versions that share bytes: what a published version holds is hard-linked into a new version, not
downloaded; only items whose digest the remote states are shared; status and gc count inodes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.install.share import place
from dscache.store.paths import COMPLETE_RECORD, INVENTORY, ITEMS, CachePaths
from tests.conftest import S3Env
from tests.factories import content_for, make_tree, publish_archives, publish_raw_archives, tar_zst
from tests.servers.hub import FakeHub

V1 = VersionKey("objects", "thor", "v1")
V2 = VersionKey("objects", "thor", "v2")
SIZES = {
    "a/one.bin": 40_000,
    "a/two.bin": 30_000,
    "b/three.bin": 20_000,
    "b/four.bin": 10_000,
    "five.bin": 5_000,
}
CHANGED = "b/three.bin"
UNCHANGED_BYTES = 40_000 + 30_000 + 10_000 + 5_000


def version_files(v: VersionKey) -> dict[str, bytes]:
    """The files of `v` on the remote: v2 changes the content (not the size) of CHANGED."""
    return {
        path: content_for(f"{path}:{'v2' if v == V2 and path == CHANGED else 'v1'}", size)
        for path, size in SIZES.items()
    }


def install(cache: Path, source: str, key: VersionKey, layout: str = "files") -> int:
    args = ["install", "--cache", str(cache), "--source", source, "--layout", layout, "--version", str(key)]
    return main(args)


def inode(cache: Path, key: VersionKey, path: str) -> int:
    return os.stat(CachePaths(cache).version_dir(key) / path).st_ino


def status_rows(cache: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    capsys.readouterr()
    assert main(["status", "--cache", str(cache), "--json"]) == 0
    return {r["version"]: r for r in json.loads(capsys.readouterr().out)["versions"]}


@pytest.fixture
def s3_source(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    for key in (V1, V2):
        for path, data in version_files(key).items():
            s3.put(f"{key.rel}/{path}", data)
    return f"s3://{s3.bucket}"


def test_s3_files_of_v2_that_v1_holds_are_linked_not_downloaded(
    tmp_path: Path, s3: S3Env, s3_source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert install(cache, s3_source, V1) == 0
    s3.server.log.clear()
    assert install(cache, s3_source, V2) == 0
    fetched = sorted(r.path.rsplit(f"{V2.rel}/", 1)[1] for r in s3.server.log.find(f"*{V2.rel}/*", "GET"))
    assert fetched == [CHANGED]
    for path in SIZES:
        same = inode(cache, V1, path) == inode(cache, V2, path)
        assert same == (path != CHANGED), path
    v2 = CachePaths(cache).version_dir(V2)
    assert {p: (v2 / p).read_bytes() for p in SIZES} == version_files(V2)
    assert main(["verify", "--cache", str(cache)]) == 0
    rows = status_rows(cache, capsys)
    assert rows["v1"]["sharedBytes"] == UNCHANGED_BYTES and rows["v2"]["sharedBytes"] == UNCHANGED_BYTES


def test_verify_checks_the_files_a_version_shares(
    tmp_path: Path, s3_source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert install(cache, s3_source, V1) == 0
    assert install(cache, s3_source, V2) == 0
    assert main(["verify", "--cache", str(cache)]) == 0
    shared = CachePaths(cache).version_dir(V2) / "five.bin"
    os.chmod(shared, 0o644)
    shared.write_bytes(b"tampered")  # through the one inode both versions hold
    capsys.readouterr()
    assert main(["verify", "--cache", str(cache), "--json"]) == 1
    report = {v["version"]: v for v in json.loads(capsys.readouterr().out)["versions"]}
    assert report[str(V1)]["changed"] == ["five.bin"] and report[str(V2)]["changed"] == ["five.bin"]


def test_objects_without_a_digest_are_downloaded_again(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = content_for("same", 50_000)
    for key in (V1, V2):  # SSE-KMS: the ETag is no MD5, and no stored checksum is listed
        s3.put(f"{key.rel}/same.bin", data, encryption="aws:kms", checksum=None)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    cache = tmp_path / "cache"
    assert install(cache, f"s3://{s3.bucket}", V1) == 0
    s3.server.log.clear()
    assert install(cache, f"s3://{s3.bucket}", V2) == 0
    assert [r.path.rsplit("/", 1)[1] for r in s3.server.log.find(f"*{V2.rel}/*", "GET")] == ["same.bin"]
    assert inode(cache, V1, "same.bin") != inode(cache, V2, "same.bin")


def test_hf_lfs_files_are_shared_by_their_sha256(
    tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in (V1, V2):
        hub.commit("org/data", {f"{key.rel}/{p}": d for p, d in version_files(key).items()})
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    cache = tmp_path / "cache"
    assert install(cache, "hf://datasets/org/data", V1) == 0
    hub.log.clear()
    assert install(cache, "hf://datasets/org/data", V2) == 0
    fetched = [r.path for r in hub.log.find("*/resolve/*", "GET")]
    assert len(fetched) == 1 and fetched[0].endswith(CHANGED)
    assert inode(cache, V1, "a/one.bin") == inode(cache, V2, "a/one.bin")
    assert inode(cache, V1, CHANGED) != inode(cache, V2, CHANGED)


def test_archives_with_the_same_digest_are_linked_from_the_published_tree(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    for key in (V1, V2):
        tree = make_tree(tmp_path / key.version, version_files(key))
        publish_archives(tree, remote, key, archive_size=32 << 10)
    sums = {}
    for key in (V1, V2):
        manifest = json.loads((remote / key.rel / "dscache-manifest.json").read_text())
        sums[key] = {name: a["sha256"] for name, a in manifest["archives"].items()}
    same = [name for name in sums[V1] if sums[V1][name] == sums[V2].get(name)]
    assert same and len(same) < len(sums[V2])  # some archives hold only unchanged files
    cache = tmp_path / "cache"
    assert install(cache, f"file://{remote}", V1, "archives") == 0
    (remote / V1.rel).rename(tmp_path / "v1-gone")  # v2's shared archives cannot come from v1's files
    for name in same:
        os.remove(remote / V2.rel / name)  # ... nor from v2's: they must be linked
    assert install(cache, f"file://{remote}", V2, "archives") == 0
    assert inode(cache, V1, "a/one.bin") == inode(cache, V2, "a/one.bin")
    assert inode(cache, V1, CHANGED) != inode(cache, V2, CHANGED)
    v2 = CachePaths(cache).version_dir(V2)
    assert {p: (v2 / p).read_bytes() for p in SIZES} == version_files(V2)
    assert main(["verify", "--cache", str(cache)]) == 0


def test_gc_reports_the_bytes_whose_last_link_went(
    tmp_path: Path, s3_source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert install(cache, s3_source, V1) == 0
    assert install(cache, s3_source, V2) == 0  # the ref now points at v2 only
    v1 = CachePaths(cache).version_dir(V1)
    own = SIZES[CHANGED] + sum(os.path.getsize(v1 / m) for m in (COMPLETE_RECORD, INVENTORY, ITEMS))
    capsys.readouterr()
    assert main(["gc", "--cache", str(cache), "--keep", "0", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["freedBytes"] == own
    assert main(["gc", "--cache", str(cache), "--keep", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["removed"] == [str(V1)] and report["freedBytes"] == own
    v2 = CachePaths(cache).version_dir(V2)
    assert {p: (v2 / p).read_bytes() for p in SIZES} == version_files(V2)
    assert status_rows(cache, capsys)["v2"]["sharedBytes"] == 0


def test_an_archive_a_later_one_overwrote_in_v1_is_downloaded_for_v2(tmp_path: Path) -> None:
    """v1's `a.tar.zst` lost `x.txt` to `b.tar.zst` (merged later), so v1 does not hold a's tree:
    v2, made of `a.tar.zst` alone, must download it rather than link b's bytes."""
    a = tar_zst([(_file("x.txt", 5), b"aaaaa"), (_file("y.txt", 3), b"yyy")])
    b = tar_zst([(_file("x.txt", 5), b"bbbbb")])  # the same size: only the record can tell
    remote = tmp_path / "remote"
    publish_raw_archives(remote, V1, {"a.tar.zst": a, "b.tar.zst": b})
    publish_raw_archives(remote, V2, {"a.tar.zst": a})
    cache = tmp_path / "cache"
    assert install(cache, f"file://{remote}", V1, "archives") == 0
    assert (CachePaths(cache).version_dir(V1) / "x.txt").read_bytes() == b"bbbbb"
    assert install(cache, f"file://{remote}", V2, "archives") == 0
    v2 = CachePaths(cache).version_dir(V2)
    assert (v2 / "x.txt").read_bytes() == b"aaaaa" and (v2 / "y.txt").read_bytes() == b"yyy"
    assert inode(cache, V1, "y.txt") != inode(cache, V2, "y.txt")
    assert main(["verify", "--cache", str(cache)]) == 0


def test_a_published_file_that_no_longer_fits_its_record_is_downloaded(
    tmp_path: Path, s3_source: str
) -> None:
    cache = tmp_path / "cache"
    assert install(cache, s3_source, V1) == 0
    v1 = CachePaths(cache).version_dir(V1)
    os.chmod(v1, 0o755)
    os.remove(v1 / "five.bin")  # damaged: gone from v1
    assert install(cache, s3_source, V2) == 0
    v2 = CachePaths(cache).version_dir(V2)
    assert {p: (v2 / p).read_bytes() for p in SIZES} == version_files(V2)
    assert inode(cache, V1, "a/one.bin") == inode(cache, V2, "a/one.bin")


def _overwrite_in_place(path: Path, offset: int, data: bytes) -> None:
    """Change bytes of a published file without changing its size, inode or mode (as root can)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def test_a_published_file_whose_bytes_changed_in_place_is_downloaded_not_linked(
    tmp_path: Path, s3: S3Env, s3_source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert install(cache, s3_source, V1) == 0
    damaged = CachePaths(cache).version_dir(V1) / "a/one.bin"
    os.chmod(damaged, 0o644)
    _overwrite_in_place(damaged, 1000, b"XXXX")
    os.chmod(damaged, 0o444)
    s3.server.log.clear()
    capsys.readouterr()
    assert install(cache, s3_source, V2) == 0
    fetched = sorted(r.path.rsplit(f"{V2.rel}/", 1)[1] for r in s3.server.log.find(f"*{V2.rel}/*", "GET"))
    assert fetched == ["a/one.bin", CHANGED]
    v2 = CachePaths(cache).version_dir(V2)
    assert {p: (v2 / p).read_bytes() for p in SIZES} == version_files(V2)
    assert inode(cache, V1, "a/one.bin") != inode(cache, V2, "a/one.bin")
    assert inode(cache, V1, "a/two.bin") == inode(cache, V2, "a/two.bin")
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert str(damaged) in warnings[0] and "--repair" in warnings[0]


def test_a_published_file_whose_mode_changed_is_copied_with_the_cache_mode(
    tmp_path: Path, s3: S3Env, s3_source: str
) -> None:
    cache = tmp_path / "cache"
    assert install(cache, s3_source, V1) == 0
    os.chmod(CachePaths(cache).version_dir(V1) / "a/one.bin", 0o666)
    s3.server.log.clear()
    assert install(cache, s3_source, V2) == 0
    assert [r.path.rsplit("/", 1)[1] for r in s3.server.log.find(f"*{V2.rel}/*", "GET")] == ["three.bin"]
    assert inode(cache, V1, "a/one.bin") != inode(cache, V2, "a/one.bin")
    assert stat.S_IMODE(os.stat(CachePaths(cache).version_dir(V2) / "a/one.bin").st_mode) == 0o444


def test_across_filesystems_a_shared_file_is_copied(tmp_path: Path) -> None:
    other = Path(tempfile.mkdtemp(dir="/dev/shm"))  # tmpfs: another filesystem than tmp_path's
    try:
        assert os.stat(other).st_dev != os.stat(tmp_path).st_dev
        src = other / "published.bin"
        src.write_bytes(b"shared bytes")
        os.chmod(src, 0o444)
        assert place(src, tmp_path / "new.bin", size=12, executable=True) is False
        assert (tmp_path / "new.bin").read_bytes() == b"shared bytes"
        assert stat.S_IMODE(os.stat(tmp_path / "new.bin").st_mode) == 0o555
        assert place(tmp_path / "new.bin", tmp_path / "linked.bin", size=12, executable=True) is True
        assert os.stat(tmp_path / "linked.bin").st_ino == os.stat(tmp_path / "new.bin").st_ino
    finally:
        shutil.rmtree(other)


def _file(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, 0o644
    return info


def test_dry_run_counts_what_would_be_linked(
    tmp_path: Path, s3_source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert install(cache, s3_source, V1) == 0
    capsys.readouterr()
    args = ["install", "--cache", str(cache), "--source", s3_source, "--layout", "files"]
    assert main([*args, "--version", str(V2), "--dry-run", "--json"]) == 0
    (version,) = json.loads(capsys.readouterr().out)["versions"]
    assert (version["itemsShared"], version["bytesShared"]) == (4, UNCHANGED_BYTES)
    assert (version["itemsToFetch"], version["bytesToFetch"]) == (1, SIZES[CHANGED])


def test_a_team_of_workers_links_what_a_published_version_holds(
    tmp_path: Path, s3: S3Env, s3_source: str
) -> None:
    """`--workers K` (an Indexed Job's pods) shares like a single installer: only the changed file is
    fetched, whichever worker owns it."""
    cache = tmp_path / "cache"
    assert install(cache, s3_source, V1) == 0
    s3.server.log.clear()
    workers = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "dscache.cli.app", "install", "--cache", str(cache)),
                *("--source", s3_source, "--layout", "files", "--version", str(V2)),
                *("--workers", "2", "--worker-index", str(index)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in (0, 1)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    fetched = sorted(r.path.rsplit(f"{V2.rel}/", 1)[1] for r in s3.server.log.find(f"*{V2.rel}/*", "GET"))
    assert fetched == [CHANGED]
    for path in SIZES:
        assert (inode(cache, V1, path) == inode(cache, V2, path)) == (path != CHANGED), path
    v2 = CachePaths(cache).version_dir(V2)
    assert {p: (v2 / p).read_bytes() for p in SIZES} == version_files(V2)
    assert main(["verify", "--cache", str(cache)]) == 0
