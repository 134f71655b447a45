"""Scratch copies: trusted only when complete, replaced when damaged, one winner under concurrency."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dscache.api.names import parse_version_arg
from dscache.api.sizes import format_size
from dscache.prepare import scratch as scratch_module
from dscache.prepare.scratch import CopyProgress, copy_progress_line, place_on_scratch
from dscache.prepare.scratchpaths import ScratchPaths
from dscache.prepare.staging import version_tag
from dscache.store.liveness import host_name
from dscache.store.paths import CachePaths
from dscache.store.records import read_complete
from tests.dscache.prepare.prepare_helpers import Dirs, cli_command, publish_version, run_cli, run_proc

VERSION = "objects/thor=v1"
FILES = {
    "top.txt": b"top",
    "a/b/c/deep.bin": b"d" * 5000,
    "a/b/sibling.txt": b"sib",
    "empty.dat": b"",
}


def _copy(dirs: Dirs) -> Path:
    return dirs.scratch / "objects" / "thor" / "v1"


def _assert_links_serve(links: Path, files: dict[str, bytes]) -> None:
    for rel, content in files.items():
        assert (links / "objects" / "thor" / rel).read_bytes() == content


def _prepare_json(dirs: Dirs) -> dict[str, object]:
    result = run_cli(*dirs.args("--version", VERSION, "--json"))
    assert result.code == 0, result.err
    version: dict[str, object] = result.json()["versions"][0]
    return version


def _leftovers(dirs: Dirs) -> list[Path]:
    """Anything left in scratch's staging area or trash."""
    control = dirs.scratch / ".dscache"
    return [p for d in ("staging", "trash") if (control / d).is_dir() for p in (control / d).iterdir()]


def _make_writable(path: Path) -> None:
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)


def test_copies_to_scratch_once_and_links_there(dirs: Dirs) -> None:
    publish_version(dirs.cache, VERSION, FILES, links={"a/alias.txt": "b/sibling.txt"})
    first = _prepare_json(dirs)
    assert first["location"] == "scratch" and first["copied"] is True
    link = dirs.links / "objects" / "thor"
    assert os.readlink(link) == "../../scratch/objects/thor/v1"
    _assert_links_serve(dirs.links, {**FILES, "a/alias.txt": b"sib"})
    assert os.readlink(_copy(dirs) / "a" / "alias.txt") == "b/sibling.txt"
    assert (_copy(dirs) / "top.txt").stat().st_mode & 0o777 == 0o444
    second = _prepare_json(dirs)
    assert second["copied"] is False


def test_wiped_copy_is_replaced(dirs: Dirs) -> None:
    publish_version(dirs.cache, VERSION, FILES)
    _prepare_json(dirs)
    _make_writable(_copy(dirs))
    for child in _copy(dirs).iterdir():  # a tmp cleaner emptied the dir but left it in place
        if child.is_dir():
            subprocess.run(["rm", "-rf", str(child)], check=True)
        else:
            child.unlink()
    assert _prepare_json(dirs)["copied"] is True
    _assert_links_serve(dirs.links, FILES)


def test_deep_change_inside_copy_is_detected(dirs: Dirs) -> None:
    publish_version(dirs.cache, VERSION, FILES)
    _prepare_json(dirs)
    deep = _copy(dirs) / "a" / "b" / "c" / "deep.bin"
    os.chmod(deep, 0o644)
    deep.write_bytes(b"truncated")
    assert _prepare_json(dirs)["copied"] is True
    _assert_links_serve(dirs.links, FILES)


def test_deleted_deep_file_is_detected(dirs: Dirs) -> None:
    publish_version(dirs.cache, VERSION, FILES)
    _prepare_json(dirs)
    (_copy(dirs) / "a" / "b" / "sibling.txt").unlink()
    assert _prepare_json(dirs)["copied"] is True
    _assert_links_serve(dirs.links, FILES)


def test_copy_without_record_is_not_trusted(dirs: Dirs) -> None:
    publish_version(dirs.cache, VERSION, FILES)
    _prepare_json(dirs)
    (_copy(dirs) / ".dscache-complete.json").unlink()
    assert _prepare_json(dirs)["copied"] is True
    assert (_copy(dirs) / ".dscache-complete.json").is_file()


def test_eight_processes_end_with_one_copy_and_valid_links(dirs: Dirs) -> None:
    files = {f"d{i % 7}/f{i}.bin": os.urandom(i * 37 % 4096) for i in range(300)}
    publish_version(dirs.cache, VERSION, files)
    procs = [
        subprocess.Popen(
            cli_command(*dirs.args("--version", VERSION, links=dirs.links / f"pod{i}")),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert [p.name for p in (dirs.scratch / "objects" / "thor").iterdir()] == ["v1"]
    assert _leftovers(dirs) == []
    for i in range(8):
        _assert_links_serve(dirs.links / f"pod{i}", files)


def test_kill_9_mid_copy_then_rerun_cleans_up_and_copies(dirs: Dirs) -> None:
    files = {f"d{i % 13}/f{i}.bin": os.urandom(4096) for i in range(3000)}
    publish_version(dirs.cache, VERSION, files)
    staging = dirs.scratch / ".dscache" / "staging"
    proc = subprocess.Popen(
        cli_command(*dirs.args("--version", VERSION)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while not (staging.is_dir() and any(any(s.iterdir()) for s in staging.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, "the copy ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert list(staging.iterdir()), "the killed process left no partial copy behind"
    assert not _copy(dirs).exists()

    result = run_proc(*dirs.args("--version", VERSION))
    assert result.code == 0, result.err
    assert _leftovers(dirs) == []
    _assert_links_serve(dirs.links, files)


def test_waits_for_a_live_peer_copy_instead_of_copying_again(dirs: Dirs) -> None:
    cache_version = publish_version(dirs.cache, VERSION, FILES)
    key = parse_version_arg(VERSION)
    peer = dirs.scratch / ".dscache" / "staging" / f"{version_tag(key)}.{host_name()}.{os.getpid()}.feed"
    peer.mkdir(parents=True)  # this test process plays a live pod copying the version
    proc = subprocess.Popen(
        cli_command(*dirs.args("--version", VERSION, "--json")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    marker = dirs.scratch / ".dscache" / "used" / "objects" / "thor" / "v1"
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline
    time.sleep(0.3)
    assert proc.poll() is None, "prepare did not wait for the live peer"
    shutil.copytree(cache_version, peer / "v1", symlinks=True)
    _copy(dirs).parent.mkdir(parents=True)
    os.rename(peer / "v1", _copy(dirs))
    peer.rmdir()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["versions"][0]["copied"] is False
    assert "copied by another process" in err.decode()


def test_unusable_scratch_falls_back_to_the_cache(dirs: Dirs) -> None:
    publish_version(dirs.cache, VERSION, FILES)
    not_a_dir = dirs.scratch / "file"
    not_a_dir.write_bytes(b"")
    result = run_cli(*dirs.args("--version", VERSION, "--scratch", str(not_a_dir), "--json", scratch=False))
    assert result.code == 0, result.err
    assert result.json()["versions"][0]["location"] == "cache"
    assert "is not usable" in result.err
    _assert_links_serve(dirs.links, FILES)


def test_a_copy_to_scratch_logs_its_start_progress_and_end(dirs: Dirs) -> None:
    publish_version(dirs.cache, VERSION, {"big.bin": b"x" * 3_000_000, **FILES})
    lines: list[str] = []
    cache = CachePaths(dirs.cache)
    key = parse_version_arg(VERSION)
    record = read_complete(cache.version_dir(key))
    assert record is not None
    placed = place_on_scratch(
        ScratchPaths(dirs.scratch), cache, {key: record}, None, lines.append, log_every=0
    )
    assert placed[0].on_scratch and placed[0].copied
    assert lines[0] == f"objects/thor=v1: copying {format_size(record.bytes)} (5 files) to scratch"
    assert lines[-1].startswith("objects/thor=v1: copied to scratch (2.9 MiB, ")


def test_copy_progress_is_logged_every_interval(tmp_path: Path) -> None:
    publish_version(tmp_path / "cache", VERSION, {"big.bin": b"x" * 3_000_000})
    record = read_complete(CachePaths(tmp_path / "cache").version_dir(parse_version_arg(VERSION)))
    assert record is not None
    lines: list[str] = []
    (tmp_path / "stage").mkdir()
    each = CopyProgress(tmp_path / "stage", record, lines.append, every=0.0)
    hourly = CopyProgress(tmp_path / "stage", record, lines.append, every=3600.0)
    each(1_500_000)
    hourly(1_500_000)
    assert len(lines) == 1
    assert lines[0].startswith("objects/thor=v1: copying to scratch, 1.4 MiB of 2.9 MiB (50%), ")


def test_copy_progress_reads_as_sizes_percent_and_rate() -> None:
    key = parse_version_arg(VERSION)
    assert copy_progress_line(key, 1 << 30, 4 << 30, 10.24) == (
        "objects/thor=v1: copying to scratch, 1.0 GiB of 4.0 GiB (25%), 100.0 MiB/s"
    )
    assert (
        copy_progress_line(key, 10, 0, 0.0) == "objects/thor=v1: copying to scratch, 0 B of 0 B (100%), ?/s"
    )


def test_pods_that_start_together_read_the_cache_once(dirs: Dirs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two preparers (processes, as two pods) pass the "is a peer copying?" look at the same moment,
    held there by a barrier: one copies, the other waits for that copy and reads nothing from the
    cache volume."""
    publish_version(dirs.cache, VERSION, FILES)
    record = read_complete(CachePaths(dirs.cache).version_dir(parse_version_arg(VERSION)))
    assert record is not None
    fork = multiprocessing.get_context("fork")
    both_looked = fork.Barrier(2)
    reads = fork.Value("i", 0)
    real_look, real_copy = scratch_module._peer_copied, scratch_module.copy_version

    def look_together(*args: Any) -> bool:
        found = real_look(*args)
        both_looked.wait(timeout=60)
        return found

    def copy_counted(*args: Any, **kwargs: Any) -> Any:
        with reads.get_lock():
            reads.value += 1
        return real_copy(*args, **kwargs)

    monkeypatch.setattr(scratch_module, "_peer_copied", look_together)
    monkeypatch.setattr(scratch_module, "copy_version", copy_counted)

    def prepare() -> None:
        [placement] = place_on_scratch(
            ScratchPaths(dirs.scratch), CachePaths(dirs.cache), {record.key: record}, None, lambda _: None
        )
        sys.exit(0 if placement.on_scratch and placement.warning is None else 1)

    procs = [fork.Process(target=prepare) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert reads.value == 1  # the version was read from the cache volume once, not once per preparer
    for rel, content in FILES.items():
        assert (_copy(dirs) / rel).read_bytes() == content
