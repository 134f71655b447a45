"""What the workers of `dscache install --workers K` say about the items they fetched: a worker that
goes on with the items of indexes no running worker holds says so in its own line (not a second
"installing ..." line), and its `share_done` counts every item it fetched, its own and the others'."""

from __future__ import annotations

import collections
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.cli.render import PlainSink
from dscache.store.lock import WriterLock
from dscache.store.paths import CachePaths
from dscache.store.team import member_lock_path
from tests.factories import publish_tree_versions
from tests.servers.files import FileServer

V1 = VersionKey("objects", "thor", "v1")
V2 = VersionKey("scenes", "ithor", "v1")


def run_worker(cache: Path, url: str, index: int, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dscache.cli.app", "install", "--cache", str(cache), "--source", url]
    cmd += ["--jobs", "1", "--workers", "3", "--worker-index", str(index), *extra]
    cmd += ["--version", str(V1), "--version", str(V2)]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=os.environ.copy(), timeout=180, check=False
    )


def events(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def archive_gets(server: FileServer) -> collections.Counter[str]:
    return collections.Counter(r.path for r in server.log.find("*.tar.zst", method="GET"))


def test_a_worker_covering_the_others_says_so_once(tmp_path: Path, http_server: FileServer) -> None:
    """Workers 1 and 2 never start: worker 0 fetches its share, then the rest. Its log has one
    "installing" line and one line naming the items it goes on to fetch and whose they are."""
    publish_tree_versions(tmp_path, http_server.root, (V1, V2), dirs=12)
    done = run_worker(tmp_path / "cache", http_server.url, 0)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len([x for x in lines if x.startswith("dscache: installing ")]) == 1, lines
    [covering] = [x for x in lines if x.startswith("dscache: worker 0 of 3: ")]
    assert covering.endswith(" left of worker(s) 1, 2, which no running worker holds"), covering
    assert "its share is done; fetching " in covering


def test_the_covering_start_event_counts_the_items_left(tmp_path: Path, http_server: FileServer) -> None:
    publish_tree_versions(tmp_path, http_server.root, (V1, V2), dirs=12)
    done = run_worker(tmp_path / "cache", http_server.url, 0, "--json")
    assert done.returncode == 0, done.stderr
    starts = [e for e in events(done.stdout) if e["event"] == "start"]
    assert [s.get("covering") for s in starts] == [None, [1, 2]]
    own, rest = int(str(starts[0]["shareTotal"])), int(str(starts[1]["coveringItems"]))
    assert own > 0 and rest > 0
    assert own + rest == len(archive_gets(http_server)), "worker 0 fetched every archive, once"


def test_share_done_counts_the_items_fetched_for_other_workers(
    tmp_path: Path, http_server: FileServer
) -> None:
    """Worker 1 is running (its lease is held) and worker 0 never starts: worker 2 fetches its own
    share and worker 0's, leaves worker 1's items to it, and says how many it fetched in all."""
    publish_tree_versions(tmp_path, http_server.root, (V1, V2), dirs=12)
    cache = CachePaths(tmp_path / "cache")
    (cache.control / "team").mkdir(parents=True)
    with WriterLock(member_lock_path(cache.control, 1), timeout=5.0, guard_team=False):
        done = run_worker(cache.root, http_server.url, 2, "--json")
    assert done.returncode == 0, done.stderr
    [share_done] = [e for e in events(done.stdout) if e["event"] == "share_done"]
    fetched = archive_gets(http_server)
    assert set(fetched.values()) == {1}
    assert share_done["items"] == len(fetched), share_done
    assert not any(e["event"] == "done" for e in events(done.stdout)), "worker 1's items are missing"


def test_the_covering_line_reads_well() -> None:
    out = io.StringIO()
    start = {"versions": ["objects/thor=v1"], "remote": "file:///r", "bytesTotal": 1, "itemsTotal": 1}
    fields = {"worker": 0, "workers": 3, "covering": [1, 2], "coveringItems": 7}
    PlainSink(out, every=0).emit("start", {**start, **fields})
    assert out.getvalue() == (
        "dscache: worker 0 of 3: its share is done; fetching 7 item(s) left of worker(s) 1, 2, "
        "which no running worker holds\n"
    )


def test_the_covering_line_names_only_the_workers_with_items_left(
    tmp_path: Path, http_server: FileServer
) -> None:
    """More workers than items (--workers 30): worker 0, alone, goes on with the others' items and
    names the indexes whose items it fetches, not every vacant index (most own none)."""
    publish_tree_versions(tmp_path, http_server.root, (V1,), dirs=2)
    cmd = [sys.executable, "-m", "dscache.cli.app", "install", "--cache", str(tmp_path / "cache")]
    cmd += [
        "--source",
        http_server.url,
        "--workers",
        "30",
        "--worker-index",
        "0",
        "--json",
        "--version",
        str(V1),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    starts = [e for e in events(done.stdout) if e["event"] == "start"]
    covering, items = starts[-1]["covering"], starts[-1]["coveringItems"]
    assert isinstance(covering, list) and isinstance(items, int)
    assert 0 < len(covering) <= items < 29, (covering, items)
    assert 0 not in covering


def test_the_covering_line_shows_runs_of_indexes_as_ranges() -> None:
    out = io.StringIO()
    start = {"versions": ["objects/thor=v1"], "remote": "file:///r", "bytesTotal": 1, "itemsTotal": 1}
    fields = {"worker": 4, "workers": 30, "covering": [0, 1, 2, 3, 5, 6, *range(8, 30)], "coveringItems": 40}
    PlainSink(out, every=0).emit("start", {**start, **fields})
    assert out.getvalue() == (
        "dscache: worker 4 of 30: its share is done; fetching 40 item(s) left of worker(s) 0-3, 5, 6, 8-29, "
        "which no running worker holds\n"
    )
