"""Two writers' workers on the same item: a writer paused past its lease, whose worker resumes while
(or after) the writer that took the lock over transfers the same item, changes nothing of what the
new writer publishes.

Writer A (`takeover.py`) is a real process holding the writer lock with a short lease; its worker
freezes A's whole process group before the item's second chunk. This process then takes the lock
over as writer B, transfers the same item with the installer's own functions and publishes it; A is
continued during B's transfer or after it, writes on (one more chunk and dies, or to the end of the
item) and must not reach B's bytes.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from dscache.api.names import VersionKey
from dscache.api.spec import DatasetCacheSpec
from dscache.install.commit import promote
from dscache.install.ingest import VerificationError, fetch_item, item_done
from dscache.install.staging import StagingPaths
from dscache.layouts.archives import plan_archives
from dscache.layouts.files import plan_files
from dscache.layouts.plan import VersionPlan
from dscache.remotes.base import Identity, Pin, Remote
from dscache.remotes.file import FileRemote
from dscache.store.lock import WriterLock
from dscache.store.paths import CachePaths
from tests.dscache.install.takeover import AfterResume, Job
from tests.factories import (
    content_for,
    dataset_snapshot,
    make_tree,
    publish_archives,
    tree_snapshot,
    version_items,
)

LEASE = 1.0
KEY = VersionKey("objects", "thor", "v1")
REPO = Path(__file__).resolve().parents[3]
BIG = content_for("big.bin", 4 << 20)  # four 1 MiB chunks of the file remote
TREE = {f"m{i}.bin": 1_500_000 for i in range(4)}  # members straddle the archive's 1 MiB chunks


class _Resuming:
    """B's remote: after the first chunk of its first stream, `hook` continues writer A (and waits
    for it)."""

    def __init__(self, inner: Remote, hook: Callable[[], None]) -> None:
        self._inner, self._hook = inner, hook
        self._hooked = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        for n, chunk in enumerate(self._inner.stream(path, offset, length, pin)):
            if n == 1 and not self._hooked:
                self._hooked = True
                self._hook()
            yield chunk


def _group_stopped(pgid: int) -> bool:
    states = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            states.append(fields[0])
    return len(states) >= 2 and all(s == "T" for s in states)  # A and its worker


def _start_a(tmp_path: Path, job: Job) -> subprocess.Popen[str]:
    job_file = tmp_path / "job.pickle"
    job_file.write_bytes(pickle.dumps(job))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.dscache.install.takeover", str(job_file)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, which its worker stops
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.strip() == "paused":
            break
    else:
        raise AssertionError(f"writer A ended before pausing: {proc.wait()}, {proc.stdout}")
    deadline = time.monotonic() + 10
    while not _group_stopped(proc.pid):
        assert time.monotonic() < deadline, "writer A did not stop"
        time.sleep(0.01)
    return proc


def _plan(kind: str, remote_dir: Path) -> tuple[VersionPlan, dict[str, bytes | str | None]]:
    """The version's plan (one item) and the data it must publish."""
    remote = FileRemote(remote_dir)
    if kind == "file":
        make_tree(remote_dir / KEY.rel, {"big.bin": BIG})
        return plan_files(remote, KEY, KEY.rel), {"big.bin": BIG}
    tree = make_tree(remote_dir.parent / "tree", dict(TREE))
    publish_archives(tree, remote_dir, KEY, archive_size=1 << 30)
    plan = plan_archives(remote, KEY, None)
    assert len(plan.items) == 1
    return plan, tree_snapshot(tree)


@pytest.mark.parametrize("after_resume", ["killed", "runs-on"])
@pytest.mark.parametrize("a_resumes", ["during", "after"])
@pytest.mark.parametrize("kind", ["file", "archive"])
def test_a_paused_writers_worker_never_writes_into_the_new_writers_item(
    tmp_path: Path, kind: str, a_resumes: Literal["during", "after"], after_resume: AfterResume
) -> None:
    remote_dir, cache = tmp_path / "remote", CachePaths(tmp_path / "cache")
    plan, expected = _plan(kind, remote_dir)
    (item,) = plan.items
    staging = StagingPaths(cache.staging_dir(KEY))
    spec = DatasetCacheSpec.model_validate(
        {"source": {"file": {"path": str(remote_dir)}}, "versions": version_items("objects/thor=v1")}
    )
    cache.lock_path.parent.mkdir(parents=True)
    writer_a = _start_a(tmp_path, Job(cache.lock_path, LEASE, KEY, spec, item, staging.root, after_resume))
    a_out: list[str] = []

    def resume_a() -> None:
        os.killpg(writer_a.pid, signal.SIGCONT)
        a_out.append(writer_a.communicate(timeout=60)[0])

    lock = WriterLock(cache.lock_path, timeout=30, stale_after=LEASE)
    lock.acquire()  # writer B, once A's heartbeat has been still for a lease
    try:
        remote: Remote = FileRemote(remote_dir)
        if a_resumes == "during":
            remote = _Resuming(remote, resume_a)
        result = fetch_item(remote, item, staging, lambda n: None, fence=lock.fence)
        if a_resumes == "after":
            resume_a()
        promote(cache, plan, [result], remote.url, None, fence=lock.fence)
    finally:
        lock.release()
    assert dataset_snapshot(cache.version_dir(KEY)) == expected
    (outcome,) = a_out
    if after_resume == "runs-on":  # A's worker went on to the end: its fence stopped it there
        assert outcome.startswith("LockLostError: ") and "was taken over" in outcome, outcome
    else:
        assert outcome.startswith("BrokenProcessPool: "), outcome


def _unlocked() -> None:
    """The fence of a transfer that runs without the writer lock (nothing else writes here)."""


@pytest.mark.parametrize("kind", ["file", "archive"])
def test_staged_bytes_changed_after_their_transfer_are_not_published(tmp_path: Path, kind: str) -> None:
    remote_dir, cache = tmp_path / "remote", CachePaths(tmp_path / "cache")
    plan, _expected = _plan(kind, remote_dir)
    (item,) = plan.items
    staging = StagingPaths(cache.staging_dir(KEY))
    result = fetch_item(FileRemote(remote_dir), item, staging, lambda n: None, fence=_unlocked)
    if kind == "file":
        with open(staging.files / "big.bin", "ab") as late:  # a writer that outlived its fence
            late.write(b"x" * 10)
        problem = "the staged file 'big.bin' holds 4194314 bytes, not the 4194304 bytes"
    else:
        os.truncate(staging.archive_dir(item.name) / "m2.bin", 1000)
        problem = "the staged file 'm2.bin' holds 1000 bytes, not the 1500000 bytes"
    with pytest.raises(VerificationError) as err:
        promote(cache, plan, [result], "file:///remote", None, fence=_unlocked)
    assert str(err.value) == (
        f"version objects/thor=v1: {problem} its transfer verified; its staging was dropped, install it again"
    )
    assert not cache.version_dir(KEY).exists() and not staging.root.exists()


def test_a_resume_copies_the_longest_partial_of_the_listed_object(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    make_tree(root, {"f.bin": BIG})
    remote = FileRemote(root)
    (item,) = plan_files(remote, KEY, "").items
    staging = StagingPaths(tmp_path / "staging")
    listed = Pin(item.identity).to_json()
    other = Pin(Identity(size=len(BIG), etag="another object")).to_json()
    partials = {  # token: (bytes held, pin record)
        "00000000000000a1": (BIG[: 1 << 20], listed),
        "00000000000000a2": (BIG[: 2 << 20], listed),
        "00000000000000a3": (BIG[: 3 << 20], other),  # longer, but of another object
        "00000000000000a4": (BIG[:10], None),  # no record: nothing shows what it is part of
    }
    for token, (data, record) in partials.items():
        staging.part("f.bin", token).parent.mkdir(parents=True, exist_ok=True)
        staging.part("f.bin", token).write_bytes(data)
        if record is not None:
            staging.pin("f.bin", token).parent.mkdir(parents=True, exist_ok=True)
            staging.pin("f.bin", token).write_text(json.dumps(record))
    reads: list[int] = []

    class Counting(FileRemote):
        def stream(
            self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
        ) -> Iterator[bytes]:
            reads.append(offset)
            return super().stream(path, offset, length, pin)

    still_open = open(staging.part("f.bin", "00000000000000a2"), "ab")  # noqa: SIM115
    try:
        result = fetch_item(Counting(root), item, staging, lambda n: None, fence=_unlocked)
        still_open.write(b"written late by the attempt that left the partial")
        still_open.flush()
    finally:
        still_open.close()
    assert reads == [2 << 20]
    assert (staging.files / "f.bin").read_bytes() == BIG and result.size == len(BIG)
    assert staging.file_attempts("f.bin") == []


def test_a_finished_file_of_another_size_than_listed_is_copied_again(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    make_tree(root, {"f.bin": BIG})
    (item,) = plan_files(FileRemote(root), KEY, "").items
    staging = StagingPaths(tmp_path / "staging")
    staging.files.mkdir(parents=True)
    (staging.files / "f.bin").write_bytes(BIG + b"tail")
    assert item_done(staging, item) is None
    (staging.files / "f.bin").write_bytes(BIG)
    done = item_done(staging, item)
    assert done is not None and done.size == len(BIG)
