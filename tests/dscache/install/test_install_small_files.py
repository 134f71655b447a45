"""Many small files: fetched several at a time by each worker, over its kept-alive connections."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.install.pipeline import batched
from dscache.layouts.plan import VersionPlan, WorkItem
from dscache.store.paths import CachePaths
from tests.factories import content_for
from tests.servers.faults import most_at_once
from tests.servers.s3 import S3Env

KEY = VersionKey("objects", "thor", "v1")
FILES = 40


def test_small_files_are_fetched_many_at_once_over_reused_connections(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(FILES):
        s3.put(f"models/{KEY.rel}/f{n:02}.txt", content_for(str(n), 1000), checksum=None)
    s3.server.faults.delay(0.2, times=None, path="*/f*.txt")  # each answer takes 0.2 s
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("DSCACHE_STREAMS", "4")  # small files: twice that in flight
    cache = tmp_path / "cache"
    args = ["--cache", str(cache), "--source", f"s3://{s3.bucket}/models", "--layout", "files"]
    assert main(["install", *args, "--version", str(KEY), "--jobs", "1"]) == 0
    version = CachePaths(cache).version_dir(KEY)
    assert all((version / f"f{n:02}.txt").read_bytes() == content_for(str(n), 1000) for n in range(FILES))
    gets = s3.server.log.find("*/f*.txt", method="GET")
    assert len(gets) == FILES
    assert most_at_once(gets) >= 6  # one worker, 8 files in flight (not one after the other)
    assert len({r.peer for r in gets}) <= 8  # each connection carried several files


def test_a_team_fetches_its_small_files_many_at_once_too(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--workers 2`: each worker batches its share of small files as a single install does."""
    for n in range(FILES):
        s3.put(f"models/{KEY.rel}/f{n:02}.txt", content_for(str(n), 1000), checksum=None)
    s3.server.faults.delay(0.2, times=None, path="*/f*.txt")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("DSCACHE_STREAMS", "4")  # small files: eight in flight per worker
    cache = tmp_path / "cache"
    args = ["--cache", str(cache), "--source", f"s3://{s3.bucket}/models", "--layout", "files"]
    cmd = [sys.executable, "-m", "dscache.cli.app", "install", *args, "--version", str(KEY), "--jobs", "1"]
    workers = [
        subprocess.Popen(
            [*cmd, "--workers", "2", "--worker-index", str(i)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for i in range(2)
    ]
    errors = [w.communicate(timeout=120)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], errors
    version = CachePaths(cache).version_dir(KEY)
    assert all((version / f"f{n:02}.txt").read_bytes() == content_for(str(n), 1000) for n in range(FILES))
    gets = s3.server.log.find("*/f*.txt", method="GET")
    assert len(gets) == FILES
    assert most_at_once(gets) >= 6  # one process each, files in flight at once (not one after the other)
    assert len({r.peer for r in gets}) <= 16  # each connection carried several files


def test_small_files_of_one_version_are_batched_and_archives_and_large_files_go_alone() -> None:
    other = VersionKey("objects", "thor", "v2")
    plans = {k: VersionPlan(k, "files", []) for k in (KEY, other)}
    big = WorkItem("file", "big", "big", size=2 << 20)
    archive = WorkItem("archive", "a.tar.zst", "a.tar.zst", size=10)
    small = [WorkItem("file", f"s{n}", f"s{n}", size=10) for n in range(5)]
    todo = [(plans[KEY], big), (plans[KEY], archive), *((plans[KEY], s) for s in small[:4])]
    todo.append((plans[other], small[4]))
    tasks = batched(todo, 1 << 20, 3)
    assert [(plan.key, [i.name for i in items]) for plan, items in tasks] == [
        (KEY, ["big"]),
        (KEY, ["a.tar.zst"]),
        (KEY, ["s0", "s1", "s2"]),
        (KEY, ["s3"]),
        (other, ["s4"]),
    ]
