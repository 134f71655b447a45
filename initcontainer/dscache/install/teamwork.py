"""`dscache install --workers K --worker-index I`: one worker of an install spread over K processes.

The K workers (the pods of an Indexed Job, spread over nodes, or processes on one machine) share the
cache volume and form a team (`store/team.py`): the one install that owns the volume until it is
published. Each worker:
1. joins under the writer lock: writes the team record unless it is there (a writer outside the team
   waits until the team is published or gone); nothing is joined when every version is published;
2. takes its member lease (`<cache>/.dscache/team/<I>.lock`): a retried worker waits for the lease
   of its dead predecessor (at once on the same host, after one lease on another one);
3. plans every version (each worker the same plan) and transfers only its share (`shares.assign`)
   into the shared staging dirs as a single install does (`InstallRun.ingest`: small files in
   batches, large items over several streams), skipping items already done, resuming a partial file
   from its bytes; its progress goes to `<I>.progress.json`, and every worker reports the sum of all of them;
4. under the writer lock: publishes the versions if every item of every version is done and
   verified, writes the ref and ends the team, recording itself as its publisher. Otherwise it
   leaves, and the last worker to finish (or a retry of one that died) commits. A worker whose commit
   finds its team already ended by the publisher (its share was done, and the others' too, before it
   got the lock) says so and leaves the ref alone (`store/team.py`). Each check runs under the lock
   after the worker's own items were renamed into place, so the last one to check finds them all. A
   worker that finds items missing takes, without waiting, the member lease of every other index
   that no live worker holds (one whose pod has not started yet or never will, one that left) and
   fetches the missing items of those indexes while it holds their leases, so the last one out
   publishes or fails: a team never ends with every worker done and nothing published. An item is
   only ever fetched by a holder of its owner's lease: a worker that starts late, or the retry of one
   that died, waits for its lease until the worker covering it has committed (or left), then finds
   its items done. A dead worker's lease marker stays until its retry takes it over (at once on the
   same host, after a lease on another one), so meanwhile the others leave its items to that retry.

Every step that changes staging is fenced by the member lease and the team record (`_MemberFence`):
a worker whose team was taken over, or whose lease a successor took, stops before its next rename.
"""

from __future__ import annotations

import errno
import hashlib
import json
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.api.spec import DatasetCacheSpec
from dscache.install import digestlog
from dscache.install.ingest import ItemResult, item_done
from dscache.install.parts import PartPolicy
from dscache.install.pipeline import (
    INSTALL_FAILURES,
    InstallError,
    InstallResult,
    InstallRun,
    check_space,
    default_remote_factory,
    install,
    install_error,
    no_space_message,
    quick_opener,
    refuse_clashes,
    target_ref,
)
from dscache.install.progress import Sink
from dscache.install.provenance import warn_differences, warn_republished
from dscache.install.shares import assign
from dscache.install.staging import StagingPaths
from dscache.install.workers import RemoteFactory
from dscache.layouts.plan import VersionPlan, WorkItem
from dscache.store import team as teams
from dscache.store.lock import Fence, LockLostError, LockTimeoutError, WriterLock
from dscache.store.ownership import check_ours
from dscache.store.ownpaths import check_writable, install_writes
from dscache.store.paths import CachePaths
from dscache.store.records import is_installed

MAX_WORKERS = 64


@dataclass(frozen=True)
class Worker:
    """This process's place in the team: worker `index` of `workers`, of the team named `team`."""

    workers: int
    index: int
    team: str


def default_team(spec: DatasetCacheSpec, ref_name: str, workers: int) -> str:
    """Pure: the team id the workers of one install agree on without talking: a digest of the resolved
    spec, the ref and the worker count (16 hex digits)."""
    canonical = json.dumps(
        [spec.model_dump(mode="json", by_alias=True), ref_name, workers],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class _MemberFence:
    """The member lease's fence, and the team record still naming `team`."""

    lease: Fence
    control: Path
    team: str

    def __call__(self) -> None:
        self.lease()
        record = teams.read_team(self.control)
        if record is None or record.team != self.team:
            raise LockLostError(
                f"install team {self.team} no longer owns {self.control.parent} (another writer took the "
                "volume over after the team stopped for a whole lease); stopped before changing it further"
            )


def _join(cache: CachePaths, worker: Worker, keys: list[VersionKey], lock_timeout: float) -> bool:
    """Write the team record unless it is there; False (and nothing written) when nothing is missing."""
    with WriterLock(cache.lock_path, timeout=lock_timeout, team=worker.team):
        record = teams.read_team(cache.control)
        if all(is_installed(cache, k) for k in keys):
            if record is not None:  # its own team's, left by a committer that died before ending it
                teams.end_team(cache.control)
            return False
        if record is None:
            teams.write_team(cache.control, teams.TeamRecord(worker.team, worker.workers))
        return True


class _Share:
    """One worker's part of the install: its items transferred, all workers' progress reported."""

    def __init__(
        self,
        run: InstallRun,
        worker: Worker,
        plans: list[VersionPlan],
        *,
        covering: frozenset[int] = frozenset(),
    ) -> None:
        self.run, self.worker, self.plans, self.covering = run, worker, plans, covering
        self.control = run.cache.control
        flat = [(plan, item) for plan in plans for item in plan.items]
        owners = assign([(f"{p.key}/{it.name}", it.work) for p, it in flat], worker.workers)
        self.base_bytes = [0] * worker.workers  # done per worker when this one started
        self.base_items = [0] * worker.workers
        self.todo: list[tuple[VersionPlan, WorkItem]] = []
        self.owner_of: dict[tuple[VersionKey, str], int] = {}  # the worker index of each item to do
        self.done: dict[VersionKey, set[str]] = {}  # items in staging when this worker started
        logged = {p.key: digestlog.load(run.cache.staging_dir(p.key)) for p in plans}
        for (plan, item), owner in zip(flat, owners, strict=True):
            done = item_done(StagingPaths(run.cache.staging_dir(plan.key)), item, logged[plan.key])
            if done is not None:
                self.done.setdefault(plan.key, set()).add(item.name)
                self.base_bytes[owner] += done.size
                self.base_items[owner] += 1
            elif owner == worker.index or owner in covering:
                self.todo.append((plan, item))
                self.owner_of[(plan.key, item.name)] = owner
        self.items_done = self.base_items[worker.index]
        self.share_total = self.items_done + len(self.todo)

    def report(self, transferred: int, event: str = "progress") -> None:
        """Write this worker's progress and emit the sum over all workers (`bytesDone`, `itemsDone`
        ...), with this worker's own items as `shareDone` of `shareTotal`."""
        me = self.worker.index
        mine = self.base_bytes[me] + transferred
        teams.write_progress(self.control, me, self.worker.team, mine, self.items_done)
        total_bytes, total_items = mine, self.items_done
        for other in range(self.worker.workers):
            if other != me:
                seen = teams.read_progress(self.control, other, self.worker.team)
                done = seen or (self.base_bytes[other], self.base_items[other])
                total_bytes += done[0]
                total_items += done[1]
        counters = self.run.counters
        counters.set_bytes(total_bytes)
        counters.items_done = total_items
        fields = {
            **counters.snapshot(),
            "worker": me,
            "workers": self.worker.workers,
            "shareDone": self.items_done,
            "shareTotal": self.share_total,
        }
        self.run.sink.emit(event, {**self._context(), **fields} if event == "start" else fields)

    def _context(self) -> dict[str, object]:
        origins = self.run.origins
        context: dict[str, object] = {
            "remote": self.run.spec.source.display_url(),
            "revisions": {str(k): o.revision for k, o in origins.items() if o.revision},
            "versions": [str(p.key) for p in self.plans],
        }
        if self.covering:  # a second start: this worker goes on with the items of other indexes
            left = {self.owner_of[(p.key, it.name)] for p, it in self.todo} - {self.worker.index}
            context["covering"] = sorted(left or self.covering)  # the indexes with items left
            context["coveringItems"] = len(self.todo)
        return context

    def transfer(self) -> int:
        """Fetch the items of `todo` (what published versions hold is linked); the bytes received."""
        run = self.run
        run.counters.bytes_total = sum(p.download_bytes for p in self.plans)
        run.counters.items_total = sum(len(p.items) for p in self.plans)
        shared: dict[VersionKey, list[ItemResult]] = {p.key: [] for p in self.plans}
        self.todo = run.dedupe(self.todo, shared)  # what published versions hold: linked, not fetched
        for key, results in shared.items():
            self.done.setdefault(key, set()).update(r.item.name for r in results)
        check_space(run.cache.root, self.plans, self.done)
        for results in shared.values():
            self.base_bytes[self.worker.index] += sum(r.size for r in results)
            self.items_done += len(results)
        if self.covering and not self.todo:  # the others' items are all done: nothing to announce
            self.report(0)
            return 0
        self.report(0, "start")
        if not self.todo:
            return 0

        linked = self.items_done

        def tick(transferred: int, finished: int) -> None:
            self.items_done = linked + finished  # a batch's files as each lands
            self.report(transferred)

        received, _resumed = run.ingest(self.todo, lambda _plan, _batch: None, tick)  # last tick: the end
        return received


def _commit(
    run: InstallRun,
    plans: list[VersionPlan],
    worker: Worker,
    ref_name: str,
    *,
    lock_timeout: float,
    merge: bool = False,
) -> list[VersionKey] | int | None:
    """Under the writer lock: publish every version whose items are all done, if they all are; write
    the ref and end the team, as its publisher; the versions published. The index of the worker that
    had done so when the team has ended that way (nothing is written); None when some item is still
    missing (another worker's)."""
    cache, spec = run.cache, run.spec
    with WriterLock(cache.lock_path, timeout=lock_timeout, team=worker.team) as lock:
        record = teams.read_team(cache.control)
        if record is not None and record.team != worker.team:  # admitted only when it was over
            raise LockLostError(f"install team {worker.team} was taken over by another writer")
        publisher = teams.published_by(cache.control, worker.team) if record is None else None
        if publisher is not None:
            return publisher
        results: dict[VersionKey, list[ItemResult]] = {}
        for plan in plans:
            if is_installed(cache, plan.key):
                continue
            staging = StagingPaths(cache.staging_dir(plan.key))
            logged = digestlog.load(staging.root)  # every worker's
            done = [item_done(staging, item, logged) for item in plan.items]
            if any(r is None for r in done):
                return None
            results[plan.key] = [r for r in done if r is not None]
        published = [
            run.commit(plan, results[plan.key], fence=lock.fence) for plan in plans if plan.key in results
        ]
        lock.fence()
        target_ref(cache, spec, ref_name, merge)[1].write(cache)
        teams.end_team(cache.control, team=worker.team, publisher=worker.index)
        return published


def _take_vacant_leases(cache: CachePaths, worker: Worker, stack: ExitStack) -> frozenset[int]:
    """The other indexes whose member lease no live worker holds, each lease now held by this worker
    (released when `stack` closes): taken without waiting, a dead holder's only when the lock's rules
    allow it at once (same host). A worker that starts later under one of these indexes waits for it."""
    taken = set()
    for index in range(worker.workers):
        if index == worker.index:
            continue
        lease = WriterLock(teams.member_lock_path(cache.control, index), timeout=0.0, guard_team=False)
        try:
            stack.enter_context(lease)
        except LockTimeoutError:
            continue
        taken.add(index)
    return frozenset(taken)


def install_share(
    spec: DatasetCacheSpec,
    cache_root: Path,
    ref_name: str,
    sink: Sink,
    worker: Worker,
    *,
    jobs: int | None = None,
    lock_timeout: float = 600.0,
    remote_factory: RemoteFactory = default_remote_factory,
    merge: bool = False,
) -> InstallResult | None:
    """Run worker `worker.index`'s share of the install of `spec` into `cache_root` (module docstring).

    Returns the install's result when this worker published the versions (or found nothing to do),
    None when it did its share and left the commit to another worker, or found that another had
    committed. `merge`: as `install`'s (the committing worker adds the versions to the ref). Raises
    `InstallError`.
    """
    started = time.monotonic()
    cache = CachePaths(cache_root)
    keys = spec.version_keys()
    cache.root.mkdir(parents=True, exist_ok=True)
    try:
        PartPolicy.from_env()  # a bad DSCACHE_STREAMS or DSCACHE_PART_SIZE: refused before any request
        check_writable(cache, install_writes([k for k in keys if not is_installed(cache, k)]))
        refuse_clashes(target_ref(cache, spec, ref_name, merge)[1])
        published_all = all(is_installed(cache, k) for k in keys)
        if (published_all and teams.read_team(cache.control) is None) or not _join(
            cache, worker, keys, lock_timeout
        ):
            return install(
                spec,
                cache_root,
                ref_name,
                sink,
                jobs=jobs,
                lock_timeout=lock_timeout,
                remote_factory=remote_factory,
                merge=merge,
            )
        present = [k for k in keys if is_installed(cache, k)]
        warn_differences(cache, spec, present)
        warn_republished(cache, spec, present, quick_opener(spec, remote_factory))
        member_path = teams.member_lock_path(cache.control, worker.index)
        with (
            teams.TeamHeartbeat(cache.control, worker.team),
            WriterLock(member_path, timeout=lock_timeout, guard_team=False) as member,
        ):
            run = InstallRun(
                cache,
                spec,
                remote_factory,
                jobs or spec.install.parallelism,
                sink,
                fence=_MemberFence(member.fence, cache.control, worker.team),
                worker_fence=_MemberFence(member.worker_fence(), cache.control, worker.team),
            )
            missing = [k for k in keys if not is_installed(cache, k)]
            check_ours(cache, missing)
            plans = run.plan(missing)
            share = _Share(run, worker, plans)
            received = share.transfer()
            fetched = len(share.todo)
            published = _commit(run, plans, worker, ref_name, lock_timeout=lock_timeout, merge=merge)
            if published is None:
                with ExitStack() as leases:
                    covering = _take_vacant_leases(cache, worker, leases)
                    if covering:  # the items of indexes no live worker holds: what is left of them
                        share = _Share(run, worker, plans, covering=covering)
                        received += share.transfer()
                        fetched += len(share.todo)
                        published = _commit(
                            run, plans, worker, ref_name, lock_timeout=lock_timeout, merge=merge
                        )
                    if published is None and len(covering) == worker.workers - 1:
                        raise InstallError(
                            "items are still missing after this worker, the last one, fetched them"
                        )
    except INSTALL_FAILURES as err:
        raise install_error(err) from None
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InstallError(no_space_message(cache_root, err)) from None
        raise InstallError(f"{err.filename or cache_root}: {err.strerror}") from None
    seconds = round(time.monotonic() - started, 3)
    if not isinstance(published, list):
        sink.emit(
            "share_done",
            {
                "worker": worker.index,
                "workers": worker.workers,
                "items": fetched,
                "downloadedBytes": received,
                "publishedBy": published,
                "ref": ref_name,
                "seconds": seconds,
            },
        )
        return None
    result = InstallResult(
        ref=ref_name,
        published=published,
        present=[k for k in keys if k not in published],
        seconds=seconds,
        downloaded_bytes=received,
    )
    sink.emit(
        "done",
        {
            "ref": ref_name,
            "published": [str(k) for k in result.published],
            "present": [str(k) for k in result.present],
            "downloadedBytes": received,
            "seconds": seconds,
            "worker": worker.index,
            "workers": worker.workers,
        },
    )
    return result
