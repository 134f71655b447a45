"""Writer A of test_install_takeover.py: a process that holds the writer lock and transfers one item
in a worker (`WorkerPool`, as the installer does) from a remote that freezes A's whole process group
(SIGSTOP, as a frozen node would be) before the item's second chunk.

    python -m tests.dscache.install.takeover JOB.pickle

`Job.after_resume` says what A's worker does once continued: "killed" hands over one more chunk and
dies (as the parent's fence kills its workers, up to one 0.5 s tick later); "runs-on" finishes the
transfer (the worst case: nothing stops it but its own fence). A prints the outcome on stdout.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dscache.api.names import VersionKey
from dscache.api.spec import DatasetCacheSpec
from dscache.install.workers import WorkerPool
from dscache.layouts.plan import WorkItem
from dscache.remotes.base import Pin, Remote
from dscache.remotes.file import FileRemote
from dscache.store.lock import WriterLock

AfterResume = Literal["killed", "runs-on"]


@dataclass(frozen=True)
class Job:
    lock: Path
    lease: float
    key: VersionKey
    spec: DatasetCacheSpec
    item: WorkItem
    staging: Path
    after_resume: AfterResume


class FreezingRemote:
    """A remote whose stream stops its process group before the second chunk (see the module)."""

    def __init__(self, inner: Remote, after_resume: AfterResume) -> None:
        self._inner, self._after_resume = inner, after_resume

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        for n, chunk in enumerate(self._inner.stream(path, offset, length, pin)):
            if n == 1:
                print("paused", file=sys.stderr, flush=True)
                os.killpg(os.getpgrp(), signal.SIGSTOP)
            elif n == 2 and self._after_resume == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            yield chunk


def freezing_factory(spec: DatasetCacheSpec) -> Remote:
    assert spec.source.file is not None
    after: AfterResume = "killed" if os.environ["TAKEOVER_AFTER_RESUME"] == "killed" else "runs-on"
    return FreezingRemote(FileRemote(spec.source.file.path), after)


def main(job_file: str) -> None:
    job: Job = pickle.loads(Path(job_file).read_bytes())
    os.environ["TAKEOVER_AFTER_RESUME"] = job.after_resume  # read by the forked worker
    lock = WriterLock(job.lock, timeout=10, stale_after=job.lease, heartbeat=job.lease / 8)
    lock.acquire()
    try:
        with WorkerPool(1, {job.key: job.spec}, freezing_factory, lock.worker_fence()) as pool:
            pool.submit(job.key, job.item, job.staging).result()
        print("finished", flush=True)
    except Exception as err:
        print(f"{type(err).__name__}: {err}", flush=True)
    finally:
        lock.release()


if __name__ == "__main__":
    main(sys.argv[1])
