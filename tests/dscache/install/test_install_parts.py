"""Many streams per object: a large object is fetched as concurrent ranged parts, resumed part by
part after a kill, restarted whole when it is replaced mid-download, and an archive's parts are
extracted in order whatever order they arrive in. Parts are made small (DSCACHE_PART_SIZE) so that
objects of a few MiB are cut into several."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from hashlib import sha256
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.install.ingest import fetch_file
from dscache.install.staging import StagingPaths
from dscache.layouts.plan import WorkItem
from dscache.remotes.base import RemoteError
from dscache.remotes.s3 import S3Remote
from dscache.store.paths import CachePaths
from tests.dscache.install.test_install_crash import assert_no_orphan_writers
from tests.factories import content_for, dataset_snapshot, make_tree, publish_archives, tree_snapshot
from tests.servers.faults import Request, most_at_once
from tests.servers.files import FileServer
from tests.servers.s3 import S3Env

KEY = VersionKey("objects", "thor", "v1")
MIB = 1 << 20


@pytest.fixture(autouse=True)
def _small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSCACHE_PART_SIZE", str(MIB))
    monkeypatch.setenv("DSCACHE_STREAMS", "4")


def _s3_args(s3: S3Env, cache: Path) -> list[str]:
    return ["--cache", str(cache), "--source", f"s3://{s3.bucket}/models", "--layout", "files"]


def _ranges(requests: list[Request]) -> list[str]:
    return sorted({r.range or "" for r in requests if r.status == 206})


def _unlocked() -> None:
    """The fence of a transfer that runs without the writer lock (nothing else writes here)."""


def test_a_large_s3_object_is_fetched_as_concurrent_ranged_parts(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = content_for("weights", 6 * MIB)
    s3.put(f"models/{KEY.rel}/weights.bin", data)
    s3.put(f"models/{KEY.rel}/config.json", b"{}")
    s3.server.faults.delay(0.3, times=None, path="*/weights.bin")  # each answer takes 0.3 s
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    cache = tmp_path / "cache"
    args = [*_s3_args(s3, cache), "--version", str(KEY), "--jobs", "1"]
    assert main(["install", *args]) == 0
    assert (CachePaths(cache).version_dir(KEY) / "weights.bin").read_bytes() == data
    gets = s3.server.log.find("*/weights.bin", method="GET")
    assert _ranges(gets) == sorted(f"bytes={n * MIB}-{(n + 1) * MIB - 1}" for n in range(6))
    assert most_at_once(gets) >= 3  # several parts in flight at once (4 streams)
    assert all(r.headers.get("if-match") for r in gets)  # every part held to the same object


def kill_once_parts_done(args: list[str], cache: Path, key: VersionKey, parts: int) -> Path:
    """Run `dscache install *args` in a process, kill -9 it once the pin records of weights.bin list
    `parts` MiB parts finished, and check that exactly those are recorded and no writer is left;
    the version's staging directory."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dscache.cli.app", "install", *args, "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    staging = CachePaths(cache).staging_dir(key)
    deadline = time.monotonic() + 60
    while _done_parts(staging) < parts and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert_no_orphan_writers(cache)
    assert _done_parts(staging) == parts
    return staging


def _done_parts(staging: Path) -> int:
    """MiB parts the pin records of the partial copies of weights.bin list as finished."""
    most = 0
    for record in (staging / "pins").glob("weights.bin.*.json"):
        try:
            spans = json.loads(record.read_text()).get("done", [])
            most = max(most, sum(b - a for a, b in spans) // MIB)
        except (OSError, ValueError):
            continue
    return most


def test_a_killed_transfer_in_parts_resumes_only_the_missing_parts(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = content_for("weights", 8 * MIB)
    s3.put(f"models/{KEY.rel}/weights.bin", data)
    # The first three parts' answers come at once; every later one stalls after 256 KiB.
    s3.server.faults.delay(0, times=3, path="*/weights.bin")
    s3.server.faults.stall(30, after=256 << 10, times=None, path="*/weights.bin")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("DSCACHE_STREAMS", "2")
    cache = tmp_path / "cache"
    args = [*_s3_args(s3, cache), "--version", str(KEY), "--jobs", "1"]
    kill_once_parts_done(args, cache, KEY, 3)
    s3.server.faults.clear()
    s3.server.log.clear()
    assert main(["install", *args]) == 0
    assert (CachePaths(cache).version_dir(KEY) / "weights.bin").read_bytes() == data
    gets = s3.server.log.find("*/weights.bin", method="GET")
    # Parts 0-2 were on disk and recorded: only the five others are fetched again.
    assert _ranges(gets) == sorted(f"bytes={n * MIB}-{(n + 1) * MIB - 1}" for n in range(3, 8))


def test_an_object_replaced_during_a_transfer_in_parts_is_fetched_again_whole(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"models/{KEY.rel}/weights.bin"
    old, new = content_for("old", 6 * MIB), content_for("new", 6 * MIB)
    s3.put(key, old)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    remote = S3Remote(s3.bucket, "models")
    (listed,) = remote.list_files(KEY.rel)
    item = WorkItem(
        kind="file", name="weights.bin", remote_path=listed.path, size=listed.size, identity=listed.identity
    )
    replaced: list[int] = []

    def progress(n: int) -> None:
        if n > 0 and not replaced:
            replaced.append(n)
            s3.put(key, new)  # after the first part's first bytes, before the others start

    staging = StagingPaths(tmp_path / "staging")
    # The listing named `old`: the parts started on it are refused (412), the transfer starts over
    # once, held to `old` again, and fails cleanly without keeping anything.
    with pytest.raises(Exception, match="again after starting over"):
        fetch_file(remote, item, staging, progress, fence=_unlocked, streams=4)
    assert staging.file_attempts("weights.bin") == []
    statuses = [r.status for r in s3.server.log.find("*/weights.bin", method="GET")]
    assert 412 in statuses
    # Without a listed identity (a manifest's sha256 only) the parts are held to what the first
    # answer named: the replaced object fails the others (412) and is fetched again whole, from 0.
    s3.put(key, old)
    replaced.clear()
    s3.server.log.clear()
    unlisted = WorkItem(
        kind="file",
        name="weights.bin",
        remote_path=listed.path,
        size=len(new),
        sha256=sha256(new).hexdigest(),
    )
    result = fetch_file(remote, unlisted, staging, progress, fence=_unlocked, streams=4)
    assert (staging.files / "weights.bin").read_bytes() == new and result.size == len(new)
    gets = s3.server.log.find("*/weights.bin", method="GET")
    refused = max(i for i, r in enumerate(gets) if r.status == 412)
    assert _ranges(gets[refused + 1 :]) == sorted(f"bytes={n * MIB}-{(n + 1) * MIB - 1}" for n in range(6))


SLOW_PART = 3.0  # seconds: long enough for later parts to overtake it on a loaded 2-core machine


def test_an_archive_whose_parts_arrive_out_of_order_extracts_correctly(
    tmp_path: Path, http_server: FileServer
) -> None:
    tree = make_tree(
        tmp_path / "tree",
        {f"d{i}/f{j}.bin": content_for(f"{i}/{j}", 300_000) for i in range(4) for j in range(5)},
    )
    publish_archives(tree, http_server.root, KEY, archive_size=1 << 30)
    (archive,) = sorted(http_server.root.rglob("*.tar.zst"))
    assert archive.stat().st_size > 5 * MIB
    # The first part goes alone; of the parts that start after it, the first to ask is answered last.
    http_server.faults.delay(0, times=1, path="*.tar.zst")
    http_server.faults.delay(SLOW_PART, times=1, path="*.tar.zst")
    cache = tmp_path / "cache"
    args = ["--cache", str(cache), "--source", http_server.url, "--version", str(KEY), "--jobs", "1"]
    assert main(["install", *args]) == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(tree)
    gets = [r for r in http_server.log.find("*.tar.zst", method="GET") if r.range]
    start = {id(r): int((r.range or "").removeprefix("bytes=").split("-")[0]) for r in gets}
    slow = max(gets, key=lambda r: r.answered - r.began)
    assert slow.answered - slow.began >= SLOW_PART and start[id(slow)] > 0
    # Parts after the slow one were asked and answered while it was pending: fetched at once, and
    # arriving before it.
    overtaking = [
        r
        for r in gets
        if start[id(r)] > start[id(slow)] and slow.began <= r.began and r.answered < slow.answered
    ]
    assert len(overtaking) >= 2


def test_the_parts_of_an_object_share_one_retry_budget(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"models/{KEY.rel}/weights.bin"
    s3.put(key, content_for("weights", 6 * MIB))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("DSCACHE_RETRY_ATTEMPTS", "4")
    monkeypatch.setenv("DSCACHE_RETRY_BASE_DELAY", "0.05")
    remote = S3Remote(s3.bucket, "models")
    (listed,) = remote.list_files(KEY.rel)
    item = WorkItem(
        kind="file", name="weights.bin", remote_path=listed.path, size=listed.size, identity=listed.identity
    )
    s3.server.faults.delay(0, times=1, path="*/weights.bin")  # the first part is served
    s3.server.faults.status(503, times=None, path="*/weights.bin")  # then the remote fails for good
    with pytest.raises(RemoteError, match="gave up after"):
        fetch_file(
            remote, item, StagingPaths(tmp_path / "staging"), lambda n: None, fence=_unlocked, streams=4
        )
    refused = [r for r in s3.server.log.find("*/weights.bin", method="GET") if r.status == 503]
    # Four failures of any parts spend the object's budget; each of the other three parts in flight
    # may fail once more before it sees that (four budgets, one per part, would take 13 or more).
    assert 4 <= len(refused) <= 4 + 3
