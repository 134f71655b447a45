"""`dscache install --workers K`: K processes share one install of one cache dir; one of them is
killed mid-way and restarted; exactly one publishes, with the right bytes, and nothing but the
interrupted item is fetched twice."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.install.shares import assign
from dscache.store.lock import LockTimeoutError, WriterLock
from dscache.store.paths import CachePaths
from dscache.store.team import TeamHeartbeat, TeamRecord, write_team
from tests.factories import dataset_snapshot, publish_tree_versions, tree_snapshot
from tests.servers.files import FileServer

V1 = VersionKey("objects", "thor", "v1")
V2 = VersionKey("scenes", "ithor", "v1")
WORKERS = 3


def worker_cmd(cache: Path, url: str, index: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dscache.cli.app",
        "install",
        "--cache",
        str(cache),
        "--source",
        url,
        "--json",
        "--jobs",
        "1",
        "--workers",
        str(WORKERS),
        "--worker-index",
        str(index),
        "--version",
        str(V1),
        "--version",
        str(V2),
    ]


def start_worker(cache: Path, url: str, index: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        worker_cmd(cache, url, index),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def events(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_three_workers_one_killed_and_restarted_publish_once(tmp_path: Path, http_server: FileServer) -> None:
    trees = publish_tree_versions(tmp_path, http_server.root, (V1, V2), dirs=12)
    archives = {r for r in os.listdir(http_server.root / V1.rel) if r.endswith(".tar.zst")}
    assert len(archives) >= 6, "each worker needs several archives for a kill mid-way"
    http_server.faults.delay(0.3, times=None, path="*.tar.zst")
    cache = tmp_path / "cache"
    procs = [start_worker(cache, http_server.url, i) for i in range(WORKERS)]
    victim = procs[1]
    assert victim.stdout is not None
    share: list[int] = []
    for line in victim.stdout:  # kill worker 1 once it has finished one archive of its share
        event = json.loads(line)
        if event["event"] == "progress" and int(str(event["shareDone"])) > 0:
            share = [int(str(event["shareDone"])), int(str(event["shareTotal"]))]
            break
    assert share and share[0] < share[1] - 1, f"worker 1 should be mid-way through its share: {share}"
    time.sleep(0.15)  # inside its next archive's request
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    gets_before_restart = len(http_server.log.find("*.tar.zst", method="GET"))
    restarted = start_worker(cache, http_server.url, 1)
    outputs = [p.communicate(timeout=180) for p in (procs[0], procs[2], restarted)]
    assert [p.returncode for p in (procs[0], procs[2], restarted)] == [0, 0, 0], [e for _, e in outputs]
    finals = [e for out, _ in outputs for e in events(out) if e["event"] in ("done", "share_done")]
    dones = [e for e in finals if e["event"] == "done"]
    assert len(dones) == 1, finals
    assert sorted(dones[0]["published"]) == sorted([str(V1), str(V2)])  # type: ignore[type-var]
    assert len([e for e in finals if e["event"] == "share_done"]) == 2
    for key, tree in trees.items():
        assert dataset_snapshot(CachePaths(cache).version_dir(key)) == tree_snapshot(tree)
    gets = collections.Counter(r.path for r in http_server.log.find("*.tar.zst", method="GET"))
    assert len(gets) == 2 * len(archives), "every archive of both versions was fetched"
    twice = [path for path, n in gets.items() if n > 1]
    assert len(twice) <= 1, f"fetched more than once: {twice} (only the interrupted archive may be)"
    assert gets_before_restart < sum(gets.values()), "the restarted worker fetched its remaining share"
    assert not (cache / ".dscache" / "team.json").exists()
    assert not (cache / ".dscache" / "writer.lock").exists()
    committer = next(out for out, _ in outputs if any(e["event"] == "done" for e in events(out)))
    last = [e for e in events(committer) if e["event"] == "progress"][-1]
    assert last["archivesDone"] == last["archivesTotal"] == 2 * len(archives), "progress sums all workers"


def test_a_writer_outside_the_team_waits_for_it(tmp_path: Path) -> None:
    cache = CachePaths(tmp_path / "cache")
    cache.control.mkdir(parents=True)
    write_team(cache.control, TeamRecord("abc", 3))
    with (
        pytest.raises(LockTimeoutError, match="team abc, 3 workers"),
        WriterLock(cache.lock_path, timeout=0.6),
    ):
        pass
    with WriterLock(cache.lock_path, timeout=0.6, team="abc"):  # a member is admitted
        pass


def test_a_team_that_stopped_for_a_lease_is_taken_over(tmp_path: Path) -> None:
    cache = CachePaths(tmp_path / "cache")
    cache.control.mkdir(parents=True)
    write_team(cache.control, TeamRecord("abc", 3))
    started = time.monotonic()
    with WriterLock(cache.lock_path, timeout=10, stale_after=1.0):
        waited = time.monotonic() - started
        assert not (cache.control / "team.json").exists()
    assert waited >= 1.0


def test_a_worker_waiting_for_its_lease_keeps_the_team_alive(tmp_path: Path) -> None:
    cache = CachePaths(tmp_path / "cache")
    cache.control.mkdir(parents=True)
    write_team(cache.control, TeamRecord("abc", 3))
    with (
        TeamHeartbeat(cache.control, "abc", every=0.2),
        pytest.raises(LockTimeoutError, match="team abc"),
        WriterLock(cache.lock_path, timeout=2.5, stale_after=1.0),
    ):
        pass
    assert (cache.control / "team.json").exists()


def test_worker_index_is_checked(
    tmp_path: Path, http_server: FileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["install", "--cache", str(tmp_path / "c"), "--source", http_server.url, "--version", str(V1)]
    assert main([*base, "--workers", "3", "--worker-index", "3"]) == 2
    assert "--worker-index 3 is out of range for --workers 3 (0..2)" in capsys.readouterr().err
    os.environ.pop("JOB_COMPLETION_INDEX", None)
    assert main([*base, "--workers", "3"]) == 2
    assert "--workers 3 needs --worker-index I (or $JOB_COMPLETION_INDEX)" in capsys.readouterr().err


def test_shares_are_balanced_and_do_not_depend_on_order() -> None:
    items = [("a", 100), ("b", 60), ("c", 50), ("d", 40), ("e", 10), ("f", 10)]
    assert assign(items, 3) == [0, 1, 2, 2, 1, 1]
    shuffled = [items[i] for i in (5, 3, 1, 0, 2, 4)]
    assert assign(shuffled, 3) == [1, 2, 1, 0, 2, 1]
    assert assign(items, 1) == [0] * 6


def test_the_last_worker_out_fetches_what_no_running_worker_holds(
    tmp_path: Path, http_server: FileServer
) -> None:
    """Workers 1 and 2 never run (their pods never started): worker 0 finishes its share, finds no other
    worker's lease, fetches the rest itself and publishes; nothing is fetched twice."""
    trees = publish_tree_versions(tmp_path, http_server.root, (V1, V2), dirs=12)
    cache = tmp_path / "cache"
    out, err = start_worker(cache, http_server.url, 0).communicate(timeout=180)
    assert [e["event"] for e in events(out) if e["event"] in ("done", "share_done")] == ["done"], err
    for key, tree in trees.items():
        assert dataset_snapshot(CachePaths(cache).version_dir(key)) == tree_snapshot(tree)
    gets = collections.Counter(r.path for r in http_server.log.find("*.tar.zst", method="GET"))
    assert set(gets.values()) == {1}


def test_a_worker_that_starts_late_leaves_its_items_to_the_one_covering_it(
    tmp_path: Path, http_server: FileServer
) -> None:
    """Worker 1's pod starts late (a loaded node): worker 0 finished its share, found no other worker's
    lease and is fetching the rest when worker 1 joins. Worker 1 waits for its lease, which worker 0
    holds while it fetches worker 1's items, so no archive is fetched twice and one worker publishes."""
    trees = publish_tree_versions(tmp_path, http_server.root, (V1, V2), dirs=12)
    http_server.faults.delay(0.3, times=None, path="*.tar.zst")
    cache = tmp_path / "cache"
    first = start_worker(cache, http_server.url, 0)
    assert first.stdout is not None
    starts = 0
    for line in first.stdout:  # its second start: the rest of the team's items, after its own share
        starts += json.loads(line)["event"] == "start"
        if starts == 2:
            break
    assert starts == 2, "worker 0 went on to fetch the other workers' items"
    late = start_worker(cache, http_server.url, 1)
    out0, err0 = first.communicate(timeout=180)
    out1, err1 = late.communicate(timeout=180)
    assert [first.returncode, late.returncode] == [0, 0], [err0, err1]
    published = [e["published"] for out in (out0, out1) for e in events(out) if e["event"] == "done"]
    assert sorted(p for ps in published for p in ps) == sorted([str(V1), str(V2)])  # type: ignore[attr-defined]
    for key, tree in trees.items():
        assert dataset_snapshot(CachePaths(cache).version_dir(key)) == tree_snapshot(tree)
    gets = collections.Counter(r.path for r in http_server.log.find("*.tar.zst", method="GET"))
    assert [path for path, n in gets.items() if n > 1] == [], "no archive fetched twice"
