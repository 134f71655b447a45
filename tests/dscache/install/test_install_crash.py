"""kill -9 at any point: no incomplete version is ever visible, and a rerun resumes without refetching."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import COMPLETE_RECORD, CachePaths
from tests.factories import content_for, dataset_snapshot, publish_tree_versions, tree_snapshot
from tests.servers.files import FileServer
from tests.servers.s3 import S3Env

V1 = VersionKey("objects", "thor", "v1")
V2 = VersionKey("scenes", "ithor", "v1")


def start_install(cache: Path, url: str) -> subprocess.Popen[str]:
    cmd = [
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
        "2",
        "--version",
        str(V1),
        "--version",
        str(V2),
    ]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy()
    )


def install_in_process(cache: Path, url: str) -> int:
    """The resuming run, in this process, so that the server's log shows what it fetched."""
    return main(
        ["install", "--cache", str(cache), "--source", url, "--version", str(V1), "--version", str(V2)]
    )


def kill_when(proc: subprocess.Popen[str], predicate: str, count: int = 1) -> list[dict[str, object]]:
    """Read JSON events until `count` events of kind `predicate`, then SIGKILL."""
    assert proc.stdout is not None
    seen: list[dict[str, object]] = []
    hits = 0
    for line in proc.stdout:
        event = json.loads(line)
        seen.append(event)
        if event["event"] == predicate and (predicate != "progress" or int(str(event["archivesDone"])) > 0):
            hits += 1
            if hits >= count:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return seen


def writers_alive(cache: Path) -> list[int]:
    """Pids of processes still running an install into `cache` (forked workers keep the argv)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"install" in argv and str(cache).encode() in argv:
            pids.append(int(cmdline.parent.name))
    return pids


def assert_no_orphan_writers(cache: Path) -> None:
    deadline = time.monotonic() + 5
    while writers_alive(cache) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writers_alive(cache) == [], "worker processes outlived the killed installer"


def assert_only_complete_versions_visible(cache: Path) -> None:
    for key in (V1, V2):
        version = CachePaths(cache).version_dir(key)
        if version.exists():
            assert (version / COMPLETE_RECORD).is_file(), f"{version} visible without its completion record"


def done_archives(cache: Path) -> set[str]:
    """Remote paths (`<dt>/<src>/<ver>/<archive>`) of the archives extracted in staging."""
    staging = cache / ".dscache" / "staging"
    done = set()
    for marker in staging.rglob("*.done.json"):
        version = marker.parent.parent.relative_to(staging).as_posix()
        done.add(f"{version}/{marker.name.removesuffix('.done.json')}")
    return done


def test_kill_at_several_points_then_resume(tmp_path: Path, http_server: FileServer) -> None:
    trees = publish_tree_versions(tmp_path, http_server.root, (V1, V2), dirs=10)
    http_server.faults.delay(0.15, times=None, path="*.tar.zst")
    cache = tmp_path / "cache"
    for point in ("start", "progress"):
        kill_when(start_install(cache, http_server.url), point)
        assert_no_orphan_writers(cache)
        assert_only_complete_versions_visible(cache)
    finished = done_archives(cache)
    assert finished, "the kills should have left some archives extracted in staging"
    http_server.log.clear()
    kill_when(start_install(cache, http_server.url), "version_published")
    assert_only_complete_versions_visible(cache)
    assert install_in_process(cache, http_server.url) == 0
    refetched = {r.path.lstrip("/") for r in http_server.log.find("*.tar.zst")}
    assert not (finished & refetched), (
        f"archives extracted before the crash were fetched again: {finished & refetched}"
    )
    for key, tree in trees.items():
        version = CachePaths(cache).version_dir(key)
        assert dataset_snapshot(version) == tree_snapshot(tree)
    assert not (cache / ".dscache" / "writer.lock").exists()


def test_random_kills_never_expose_a_partial_version(tmp_path: Path, http_server: FileServer) -> None:
    publish_tree_versions(tmp_path, http_server.root, (V1, V2), dirs=10)
    http_server.faults.delay(0.02, times=None, path="*.tar.zst")
    cache = tmp_path / "cache"
    stop = threading.Event()
    violations: list[str] = []

    def watch() -> None:
        while not stop.is_set():
            for key in (V1, V2):
                version = CachePaths(cache).version_dir(key)
                if version.is_dir() and not (version / COMPLETE_RECORD).is_file():
                    violations.append(str(version))
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for delay in (0.3, 0.6, 0.9, 1.2, 1.5, 2.0):
            proc = start_install(cache, http_server.url)
            time.sleep(delay)
            proc.kill()
            proc.wait()
        assert install_in_process(cache, http_server.url) == 0
    finally:
        stop.set()
        watcher.join()
    assert violations == []
    assert all(CachePaths(cache).complete_record(k).is_file() for k in (V1, V2))


def test_two_concurrent_installs_publish_once(tmp_path: Path, http_server: FileServer) -> None:
    publish_tree_versions(tmp_path, http_server.root, (V1, V2), dirs=10)
    cache = tmp_path / "cache"
    procs = [start_install(cache, http_server.url) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    published = [
        json.loads(line)["published"]
        for out in outputs
        for line in out.splitlines()
        if json.loads(line)["event"] == "done"
    ]
    assert sorted(len(p) for p in published) == [0, 2]
    archive_gets = [r.path for r in http_server.log.find("*.tar.zst")]
    assert len(archive_gets) == len(set(archive_gets))


def test_kill_during_a_multipart_s3_object_then_a_replaced_object_is_fetched_whole(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 part way through a multipart object (ETag `...-3`), replace it with other bytes of
    the same size: the rerun must not append the new object's tail to the old one's head."""
    key = f"models/{V1.rel}/weights.bin"
    old, new = content_for("old weights", 12 << 20), content_for("new weights", 12 << 20)
    assert s3.put_multipart(key, old).endswith('-3"')
    s3.put(f"models/{V1.rel}/config.json", b"{}")
    s3.server.faults.stall(seconds=5, after=3 << 20, path="*/weights.bin")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    cache = tmp_path / "cache"
    args = ["--cache", str(cache), "--source", f"s3://{s3.bucket}/models", "--layout", "files"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dscache.cli.app", "install", *args, "--version", str(V1), "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    parts = CachePaths(cache).staging_dir(V1) / "parts"

    def partial() -> int:
        return max((p.stat().st_size for p in parts.glob("weights.bin.*")), default=0)

    deadline = time.monotonic() + 60
    while partial() < 2 << 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert_no_orphan_writers(cache)
    assert 0 < partial() < len(old)  # killed part way through the object
    s3.put_multipart(key, new)
    s3.server.faults.clear()
    assert main(["install", *args, "--version", str(V1)]) == 0
    installed = CachePaths(cache).version_dir(V1) / "weights.bin"
    assert installed.read_bytes() == new
    assert main(["verify", "--cache", str(cache)]) == 0


def test_ctrl_c_while_workers_wait_for_their_first_items_is_one_line_and_resumes(
    tmp_path: Path, http_server: FileServer
) -> None:
    # Ctrl-C in a terminal signals the whole process group: the installer and its worker processes.
    # The workers' first archives start one after another, so right after the first request went out
    # the other workers are idle, waiting for an item; each of them printed Python's traceback.
    trees = publish_tree_versions(tmp_path, http_server.root, [V1], dirs=6)
    first = http_server.faults.delay(0.6, times=None, path="*.tar.zst")
    cache = tmp_path / "cache"
    argv = [sys.executable, "-m", "dscache", "install", "--cache", str(cache), "--source", http_server.url,
            "--version", str(V1), "--jobs", "3"]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while first.fired == 0 and time.monotonic() < deadline:  # the first archive's request is out
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == (
        "dscache: error: interrupted: what it finished stays in staging; run the same install again to "
        "resume it"
    )
    assert "Traceback" not in out + err and len(err.splitlines()) <= 3, err  # the start, a progress line
    assert_no_orphan_writers(cache)
    http_server.faults.clear()
    assert subprocess.run(argv, capture_output=True, check=False).returncode == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(V1)) == tree_snapshot(trees[V1])
