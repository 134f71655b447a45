"""The installer's transfers run in forked worker processes, not threads.

Within a worker, threads: the parts of one large object (`parts.py`), or a batch of small files
fetched several at a time over the worker's connections, since a small file's time is mostly the
remote's first-byte latency (the benchmark's model: 20 ms of ~34 ms per 8 KB file on one stream).

Why processes: extraction makes several short libarchive calls per archive member, and threads convoy
on the GIL between them. On the benchmark's 61 archives (2 cores) one thread took 0.92 s, four threads
1.58 s, two processes 0.49 s. Workers are forked, so they inherit the spec and the remote factory and
only an item and its result cross a pipe. Each worker opens its own remote (connections are never
shared across a fork), pinned to the revision the parent resolved, and dies with the parent
(PR_SET_PDEATHSIG): a killed installer never leaves a writer behind on the volume. A stopped one
(SIGSTOP, a frozen VM) resumes with its workers, which write only into their attempts' private paths
and check the writer lock's fence (`WriterLock.worker_fence`) before an item's result is renamed into
place, so a writer that lost the lock meanwhile changes no item the new writer transfers.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from types import TracebackType
from typing import Any

from dscache.api.names import VersionKey
from dscache.api.spec import DatasetCacheSpec
from dscache.install.failures import ITEM_FAILURES, item_failure
from dscache.install.ingest import ItemResult, fetch_item
from dscache.install.staging import StagingPaths
from dscache.layouts.plan import WorkItem
from dscache.remotes.base import Remote
from dscache.store.lock import Fence

RemoteFactory = Callable[[DatasetCacheSpec], Remote]
_PR_SET_PDEATHSIG = 1
_POLL = 0.002  # seconds between reads of the byte tally while waiting for a first byte


@dataclass
class _Worker:
    """What a worker process needs: the pinned spec of each version, the writer lock's fence and the
    remotes it opened."""

    specs: dict[VersionKey, DatasetCacheSpec]
    factory: RemoteFactory
    transferred: Synchronized[int]
    received: Synchronized[int]
    resumed: Synchronized[int]
    finished: Synchronized[int]
    fence: Fence
    remotes: dict[int, Remote] = field(default_factory=dict)
    threads: ThreadPoolExecutor | None = None

    def remote(self, key: VersionKey) -> Remote:
        spec = self.specs[key]
        if id(spec) not in self.remotes:  # versions of one origin share one spec object, so one remote
            self.remotes[id(spec)] = self.factory(spec)
        return self.remotes[id(spec)]

    def progress(self, n: int) -> None:
        with self.transferred.get_lock():
            self.transferred.value += n

    def receive(self, n: int) -> None:
        with self.received.get_lock():
            self.received.value += n

    def resume(self, n: int) -> None:
        with self.resumed.get_lock():
            self.resumed.value += n

    def fetch(
        self, key: VersionKey, remote: Remote, item: WorkItem, staging: StagingPaths, streams: int = 1
    ) -> ItemResult:
        """`fetch_item`, counted in `finished` once the item's result is in place. An item's failure
        becomes an `ItemFailedError` naming version `key` and the item (`failures.py`)."""
        try:
            result = fetch_item(
                remote, item, staging, self.progress, fence=self.fence, streams=streams,
                received=self.receive, resumed=self.resume,
            )  # fmt: skip
        except ITEM_FAILURES as err:
            raise item_failure(key, item, err) from None
        with self.finished.get_lock():
            self.finished.value += 1
        return result

    def pool(self, size: int) -> ThreadPoolExecutor:
        """The threads small items are fetched on (made once per worker, with `size` threads)."""
        if self.threads is None:
            self.threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="small")
        return self.threads


_STATE: list[_Worker] = []  # this process's worker state, set once by `_init`


def _init(
    specs: dict[VersionKey, DatasetCacheSpec],
    factory: RemoteFactory,
    tallies: tuple[Synchronized[int], Synchronized[int], Synchronized[int], Synchronized[int]],
    fence: Fence,
    parent: int,
) -> None:
    # Ctrl-C signals the whole process group: the parent says `interrupted` and kills its workers
    # (`abort`); a worker idle between items would print the KeyboardInterrupt's traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    _STATE.append(_Worker(specs, factory, *tallies, fence))  # (transferred, received, resumed, finished)


def _fetch(key: VersionKey, item: WorkItem, staging_root: Path, streams: int) -> ItemResult:
    worker = _STATE[0]
    staging = StagingPaths(staging_root)
    return worker.fetch(key, worker.remote(key), item, staging, streams)


def _fetch_batch(
    key: VersionKey, items: list[WorkItem], staging_root: Path, streams: int
) -> list[ItemResult]:
    if len(items) == 1:
        return [_fetch(key, items[0], staging_root, streams)]
    worker = _STATE[0]
    staging = StagingPaths(staging_root)
    remote = worker.remote(key)
    pool = worker.pool(streams)
    futures = [pool.submit(worker.fetch, key, remote, item, staging) for item in items]
    return [future.result() for future in futures]


class WorkerPool:
    """`jobs` worker processes transferring items; `transferred` counts the bytes in their items as
    they stream (a resumed file's earlier bytes included, an attempt that starts over taken back), of
    them `received` those that came from the remote (a discarded attempt's included) and `resumed`
    those of partial files an earlier attempt left; `finished` counts their items as each one's result
    is in place (a batch's items one by one, not when the whole batch returns).

    `fence` is called by the workers (forked: no pickling) before each item and before its result is
    renamed into place; it must work in a forked child (`WriterLock.worker_fence`).
    """

    def __init__(
        self, jobs: int, specs: dict[VersionKey, DatasetCacheSpec], factory: RemoteFactory, fence: Fence
    ) -> None:
        context = multiprocessing.get_context("fork")
        self._transferred: Synchronized[int] = context.Value("q", 0)
        self._received: Synchronized[int] = context.Value("q", 0)
        self._resumed: Synchronized[int] = context.Value("q", 0)
        self._finished: Synchronized[int] = context.Value("q", 0)
        tallies = (self._transferred, self._received, self._resumed, self._finished)
        self._pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=_init,
            initargs=(specs, factory, tallies, fence, os.getpid()),
        )

    @property
    def transferred(self) -> int:
        return int(self._transferred.value)

    @property
    def received(self) -> int:
        return int(self._received.value)

    @property
    def resumed(self) -> int:
        return int(self._resumed.value)

    @property
    def finished(self) -> int:
        return int(self._finished.value)

    def wait_first_byte(self, first: Future[Any], timeout: float) -> None:
        """Wait until the workers have received a first byte from the remote, or until `first` (the
        task submitted first) is done without one (it failed, or needed no byte), at most `timeout`
        seconds."""
        deadline = time.monotonic() + timeout
        while self.received == 0 and not first.done() and time.monotonic() < deadline:
            time.sleep(_POLL)

    def submit(
        self, key: VersionKey, item: WorkItem, staging_root: Path, streams: int = 1
    ) -> Future[ItemResult]:
        """Transfer `item`, a large one over up to `streams` streams (`parts.py`)."""
        return self._pool.submit(_fetch, key, item, staging_root, streams)

    def submit_batch(
        self, key: VersionKey, items: list[WorkItem], staging_root: Path, streams: int
    ) -> Future[list[ItemResult]]:
        """Transfer `items` in one worker: one item over up to `streams` streams (as `submit`), or
        small items `streams` at a time on its threads, over its connections."""
        return self._pool.submit(_fetch_batch, key, items, staging_root, streams)

    def close(self) -> None:
        """Let the workers exit once the submitted items are done, without waiting for them (leaving
        the `with` block waits)."""
        self._pool.shutdown(wait=False)

    def abort(self) -> None:
        """Stop at once: queued items are dropped, running ones killed (their staging is resumable)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():
            child.kill()
            child.join()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        self._pool.shutdown(wait=True)
