"""A worker of `dscache install --workers K` that finishes its share after a teammate has published
says what it did (its items fetched, who published) and leaves the ref the publisher wrote alone.
Failed before the fix: it said `done: 0 published, 2 already present` and wrote the ref again."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.cli.render import PlainSink
from dscache.store.lock import WriterLock
from dscache.store.paths import CachePaths
from dscache.store.team import TeamRecord, end_team, published_by, write_team
from tests.factories import dataset_snapshot, publish_tree_versions, tree_snapshot
from tests.servers.files import FileServer

V1 = VersionKey("objects", "thor", "v1")
V2 = VersionKey("scenes", "ithor", "v1")


def worker_cmd(cache: Path, url: str, index: int) -> list[str]:
    cmd = [sys.executable, "-m", "dscache.cli.app", "install", "--cache", str(cache), "--source", url]
    cmd += ["--json", "--jobs", "1", "--workers", "2", "--worker-index", str(index)]
    return [*cmd, "--version", str(V1), "--version", str(V2)]


def events(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def wait_for(what: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_worker_that_finishes_after_its_teammate_published_says_so_and_leaves_the_ref(
    tmp_path: Path, http_server: FileServer
) -> None:
    trees = publish_tree_versions(tmp_path, http_server.root, (V1, V2), dirs=6)
    http_server.faults.delay(0.3, times=None, path="*.tar.zst")
    cache = CachePaths(tmp_path / "cache")
    out, err = tmp_path / "late.out", tmp_path / "late.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        late = subprocess.Popen(
            worker_cmd(cache.root, http_server.url, 1), stdout=stdout, stderr=stderr, env=os.environ.copy()
        )
    try:
        wait_for(lambda: '"event": "start"' in out.read_text())  # joined the team, fetching its share
        # Worker 1 does its share, then waits for the writer lock to commit; it is stopped there while
        # worker 0 runs from start to end: worker 0 finds every item done and publishes.
        with WriterLock(cache.lock_path, timeout=30.0, guard_team=False):
            wait_for(lambda: "waiting for the cache writer lock" in err.read_text())
            os.kill(late.pid, signal.SIGSTOP)
        its_share = sum(r.sent for r in http_server.log.find("*.tar.zst", method="GET"))  # worker 1's
        first = subprocess.run(
            worker_cmd(cache.root, http_server.url, 0),
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=180,
            check=False,
        )
        assert first.returncode == 0, first.stderr
        [published] = [e for e in events(first.stdout) if e["event"] == "done"]
        assert sorted(published["published"]) == [str(V1), str(V2)]  # type: ignore[call-overload]
        ref = cache.ref_path("default")
        written = (ref.stat().st_ino, ref.stat().st_mtime_ns, ref.read_text())
    finally:
        os.kill(late.pid, signal.SIGCONT)
    assert late.wait(timeout=120) == 0, err.read_text()

    said = events(out.read_text())
    [start] = [e for e in said if e["event"] == "start"]
    assert int(str(start["shareTotal"])) > 0
    last = said[-1]
    assert last["event"] == "share_done", last
    assert (last["worker"], last["workers"], last["items"]) == (1, 2, start["shareTotal"])
    assert (last["publishedBy"], last["ref"]) == (0, "default")
    assert last["downloadedBytes"] == its_share > 0
    assert not any(e["event"] == "done" for e in said)
    assert (ref.stat().st_ino, ref.stat().st_mtime_ns, ref.read_text()) == written
    for key, tree in trees.items():
        assert dataset_snapshot(cache.version_dir(key)) == tree_snapshot(tree)


def test_the_line_of_a_worker_whose_teammate_published_names_it() -> None:
    out = io.StringIO()
    fields = {"worker": 1, "workers": 3, "items": 4, "seconds": 2.04, "downloadedBytes": 5 << 20}
    PlainSink(out, every=0).emit("share_done", {**fields, "publishedBy": 2, "ref": "default"})
    PlainSink(out, every=0).emit("share_done", {**fields, "publishedBy": None, "ref": "default"})
    assert out.getvalue().splitlines() == [
        "dscache: worker 1 of 3 done: fetched its 4 item(s), 5.0 MiB, in 2.0s; worker 2 had already "
        "published every version and written ref default",
        "dscache: worker 1 of 3 done: fetched its 4 item(s), 5.0 MiB, in 2.0s; the last worker to "
        "finish publishes",
    ]


def test_a_team_end_names_its_publisher_until_the_next_team_starts_or_one_is_taken_over(
    tmp_path: Path,
) -> None:
    control = tmp_path / ".dscache"
    control.mkdir()
    end_team(control, team="a", publisher=2)
    assert (published_by(control, "a"), published_by(control, "b")) == (2, None)
    write_team(control, TeamRecord("b", 2))  # a new team: team a's end is forgotten
    assert published_by(control, "a") is None
    end_team(control, team="b", publisher=1)
    assert published_by(control, "b") == 1
    write_team(control, TeamRecord("c", 2))
    end_team(control)  # taken over by a writer outside the team: nobody published
    assert (published_by(control, "b"), published_by(control, "c")) == (None, None)
