"""A writer whose lock was taken over while it was paused changes nothing after it resumes.

Each writer runs as a real `dscache` process with a short lease. It is paused either from outside
(SIGSTOP to its whole process group, as a frozen node would be), or by itself at a chosen function
(`TEST_PAUSE_AT=module:function` stops the process on entry, i.e. right before the step that function
takes), so that the pause falls before a given irreversible step. A second writer then takes the lock
over after one lease of silence, and the first is resumed with SIGCONT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.lock import WriterLock
from dscache.store.paths import CachePaths
from dscache.store.records import read_ref
from tests.factories import dataset_snapshot, make_tree, publish_archives, tree_snapshot
from tests.servers.files import FileServer

LEASE = 1.5
V1 = VersionKey("objects", "thor", "v1")
V2 = VersionKey("scenes", "ithor", "v1")

RUN = """
import functools, importlib, os, signal, sys
from dscache.store import lock
lease = float(os.environ["TEST_LEASE"])
lock.WriterLock = functools.partial(lock.WriterLock, stale_after=lease, heartbeat=lease / 8)
if os.environ.get("TEST_PAUSE_AT"):
    module_name, name = os.environ["TEST_PAUSE_AT"].split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, name)
    def paused(*args, **kwargs):
        print("paused", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)
        return original(*args, **kwargs)
    setattr(module, name, paused)
from dscache.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


def start(args: list[str], pause_at: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "TEST_LEASE": str(LEASE), "TEST_PAUSE_AT": pause_at}
    return subprocess.Popen(
        [sys.executable, "-c", RUN, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: SIGSTOP reaches its workers too
    )


def wait_paused(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.strip() == "paused":
            break
    else:
        raise AssertionError(f"exited with {proc.wait()} before reaching its pause point")
    deadline = time.monotonic() + 10
    while _state(proc.pid) != "T":
        assert time.monotonic() < deadline, "did not stop"
        time.sleep(0.01)


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0]


def resume(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """SIGCONT the paused writer; its exit code and the rest of its stdout and stderr."""
    os.killpg(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def take_over(cache: Path) -> WriterLock:
    """This process becomes the writer (after one lease of the paused writer's silence)."""
    lock = WriterLock(CachePaths(cache).lock_path, timeout=30, stale_after=LEASE)
    lock.acquire()
    return lock


def assert_stopped_on_takeover(code: int, _out: str, err: str) -> None:
    assert code == 1, err
    assert "was taken over" in err and "stopped before changing the cache" in err, err
    assert "Traceback" not in err, err


def install_args(cache: Path, url: str, *keys: VersionKey, ref: str = "default") -> list[str]:
    return ["install", "--cache", str(cache), "--source", url, "--ref", ref] + [
        a for k in keys for a in ("--version", str(k))
    ]


def publish(tmp_path: Path, remote: Path, *keys: VersionKey) -> dict[VersionKey, Path]:
    trees = {}
    for key in keys:
        tree = make_tree(
            tmp_path / f"tree-{key.data_type}",
            {f"d{i}/f{j}.txt": 2000 + i * j for i in range(10) for j in range(5)},
        )
        publish_archives(tree, remote, key, archive_size=8192)
        trees[key] = tree
    return trees


def test_install_paused_past_the_lease_publishes_nothing_after_a_takeover(
    tmp_path: Path, http_server: FileServer
) -> None:
    trees = publish(tmp_path, http_server.root, V1, V2)
    http_server.faults.delay(0.2, times=None, path="*.tar.zst")
    cache = tmp_path / "cache"
    first = start([*install_args(cache, http_server.url, V1), "--json", "--jobs", "2"])
    assert first.stdout is not None
    for line in first.stdout:  # paused while its workers transfer V1's archives, one of them done
        event = json.loads(line)
        if event["event"] == "progress" and int(event["archivesDone"]) > 0:
            break
    os.killpg(first.pid, signal.SIGSTOP)
    second = start(install_args(cache, http_server.url, V2))  # the spec moved on to V2
    _out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    code, out, err = resume(first)
    assert code == 1, err
    remaining = [json.loads(line) for line in out.splitlines() if line]
    assert [e["event"] for e in remaining if e["event"] in ("version_published", "done")] == []
    (error,) = [e["message"] for e in remaining if e["event"] == "error"]
    assert "was taken over" in error and "stopped before changing the cache" in error
    assert "Traceback" not in err
    paths = CachePaths(cache)
    assert not paths.version_dir(V1).exists()  # V1 never published by the writer that lost the lock
    assert list((paths.staging_dir(V1) / "archives").glob("*.done.json"))  # left for the next writer
    ref = read_ref(paths, "default")
    assert ref is not None and [e.key for e in ref.versions] == [V2]  # not set back to V1
    assert dataset_snapshot(paths.version_dir(V2)) == tree_snapshot(trees[V2])
    assert main(["verify", "--cache", str(cache)]) == 0
    assert not paths.lock_path.exists()


def test_install_paused_right_before_publishing_stops_after_a_takeover(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    publish(tmp_path, remote, V1)
    cache = tmp_path / "cache"
    proc = start(install_args(cache, f"file://{remote}", V1), pause_at="dscache.install.pipeline:promote")
    wait_paused(proc)
    lock = take_over(cache)
    try:
        assert_stopped_on_takeover(*resume(proc))
        paths = CachePaths(cache)
        assert not paths.version_dir(V1).exists()
        assert not paths.ref_path("default").exists()
        assert sorted(p.name for p in (paths.staging_dir(V1) / "archives").glob("*.done.json"))  # left whole
        lock.fence()  # still the successor's
    finally:
        lock.release()


def test_gc_paused_right_before_removing_a_version_stops_after_a_takeover(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    publish(tmp_path, remote, V1, V2)
    cache = tmp_path / "cache"
    assert main(install_args(cache, f"file://{remote}", V1, V2, ref="old")) == 0
    assert (
        main(["release", "--cache", str(cache), "--ref", "old", "--protect", str(V1), "--protect", str(V2)])
        == 0
    )
    proc = start(["gc", "--cache", str(cache), "--keep", "0"], pause_at="dscache.maintain.gc:remove_version")
    wait_paused(proc)
    lock = take_over(cache)
    try:
        assert_stopped_on_takeover(*resume(proc))
        paths = CachePaths(cache)
        assert paths.complete_record(V1).is_file() and paths.complete_record(V2).is_file()
    finally:
        lock.release()


def test_gc_paused_before_deleting_abandoned_staging_leaves_it_to_the_new_writer(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    stage = CachePaths(cache).staging_dir(V1)
    (stage / "archives").mkdir(parents=True)
    (stage / "archives" / "a.tar.zst.done.json").write_text("{}")
    week_ago = time.time() - 8 * 24 * 3600
    for p in (stage / "archives" / "a.tar.zst.done.json", stage / "archives"):
        os.utime(p, (week_ago, week_ago))
    proc = start(["gc", "--cache", str(cache), "--keep", "1"], pause_at="dscache.maintain.gc:stale_staging")
    wait_paused(proc)
    lock = take_over(cache)  # e.g. an install that resumes from this staging
    try:
        assert_stopped_on_takeover(*resume(proc))
        assert (stage / "archives" / "a.tar.zst.done.json").is_file()
    finally:
        lock.release()


def test_release_paused_right_before_removing_a_version_stops_after_a_takeover(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    publish(tmp_path, remote, V1)
    cache = tmp_path / "cache"
    assert main(install_args(cache, f"file://{remote}", V1, ref="ns.doomed")) == 0
    proc = start(
        ["release", "--cache", str(cache), "--ref", "ns.doomed"],
        pause_at="dscache.maintain.gc:remove_version",
    )
    wait_paused(proc)
    lock = take_over(cache)
    try:
        assert_stopped_on_takeover(*resume(proc))
        paths = CachePaths(cache)
        assert paths.complete_record(V1).is_file()
        assert paths.ref_path("ns.doomed").is_file()
    finally:
        lock.release()
