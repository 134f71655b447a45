"""`dscache install`: the single writer. Plans, transfers, verifies and publishes missing versions.

Flow: nothing missing -> no network at all (the ref is updated if needed). Otherwise, under the
writer lock: pin the remote revision, fetch each version's metadata, link the items whose bytes a
version published before holds (`share.py`), check free space, transfer all other items of all
versions, largest first, through one pool of worker processes (`workers.py`) while the filesystem is
flushed in the background, promote each version as soon as its items are done, and write the ref
last.
"""

from __future__ import annotations

import errno
import logging
import os
import shlex
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from dscache.api.envnames import derived_name
from dscache.api.names import VersionKey
from dscache.api.spec import LINK_STRATEGY_IN_REF, DatasetCacheSpec, slot_clash
from dscache.errors import DscacheError, InvalidInputError
from dscache.install import digestlog
from dscache.install.commit import now_iso, promote
from dscache.install.extracted import ArchiveRejectedError
from dscache.install.failures import ItemFailedError, item_failure, plan_failure
from dscache.install.ingest import ItemResult, VerificationError, item_done
from dscache.install.parts import PartPolicy, streams_per_item
from dscache.install.preload import ExtractorUnavailableError, extractor_preloaded
from dscache.install.progress import Counters, Sink
from dscache.install.provenance import QUICK, ref_remote, warn_differences, warn_republished
from dscache.install.republish import RepublishedError, republished, republished_error, settled_plan
from dscache.install.share import intact, reuse_item, share_item
from dscache.install.space import Need, mount_point, room, shortage, version_need
from dscache.install.staging import StagingPaths
from dscache.install.workers import RemoteFactory, WorkerPool
from dscache.layouts.archives import plan_archives
from dscache.layouts.files import plan_files
from dscache.layouts.molmospaces import MOLMO_REMOTE_MANIFEST, record_molmo_version
from dscache.layouts.plan import LayoutError, VersionPlan, WorkItem
from dscache.remotes.base import Remote, RemoteError
from dscache.store.fsops import BackgroundFlush
from dscache.store.lock import Fence, LockError, WriterLock
from dscache.store.ownership import NotOursError, check_ours
from dscache.store.ownpaths import NotWritableError, check_writable, install_writes
from dscache.store.paths import CachePaths
from dscache.store.records import Ref, RefEntry, RefError, is_installed, read_ref
from dscache.store.shares import ShareIndex, read_items

log = logging.getLogger("dscache.install.pipeline")
TICK = 0.5
STAGGER_SPREAD = 0.25
"""Seconds at most from the first to the last of the staggered first items (`staggered_starts`),
whatever the remote's first-byte time and the number of workers."""
RANGE_IGNORED = (
    "the server ignores Range (it answers with the whole object), so every object comes over one "
    "stream, and a cut transfer resumes by reading the object again from its start"
)
"""Said once per install at -v (see README: a server that ignores Range)."""


class RefClashError(DscacheError):
    """The ref the install would write names versions pods could not link together (`ref_clash`)."""


class EnvClashError(InvalidInputError):
    """The ref the install would write gives two sources one environment variable (`env_clash`);
    exit code 2, as `-f` refuses the same pair."""


INSTALL_FAILURES = (
    RemoteError,
    LayoutError,
    ArchiveRejectedError,
    VerificationError,
    LockError,
    NotOursError,
    RefError,
    NotWritableError,
    ItemFailedError,
    RepublishedError,
    RefClashError,
    EnvClashError,
    ExtractorUnavailableError,
)
"""What an install (single or team) turns into one `InstallError` line: input, remote and lock failures,
and a missing system library."""
SMALL_ITEM = 1 << 20
"""Items of at most this many bytes are fetched in batches, several at a time per worker."""
SMALL_BATCH = 64
"""Small items per batch (one task of a worker process)."""
SMALL_STREAMS_FACTOR = 2
"""Small items in flight at once, as a multiple of the stream budget (DSCACHE_STREAMS): a small file
waits for its first byte most of its time, and moves few bytes."""
SMALL_THREADS = 32
"""Most small items one worker fetches at once: the connections its HTTP pools keep alive per host."""


class InstallError(DscacheError):
    """The install failed; the message is safe to show (no credentials) and says what to fix."""


class InstallInputError(InstallError, InvalidInputError):
    """The install failed on bad input (a setting, a name): exit code 2."""


class PlanInputError(LayoutError, InvalidInputError):
    """Planning a version failed on bad input (a setting the remote refused): exit code 2."""


def install_error(err: BaseException) -> InstallError:
    """`err` (one of INSTALL_FAILURES) as the one line an install reports, keeping its kind: bad input
    stays bad input (exit code 2)."""
    kind = InstallInputError if isinstance(err, InvalidInputError) else InstallError
    return kind(str(err))


@dataclass
class InstallResult:
    ref: str
    published: list[VersionKey] = field(default_factory=list)
    present: list[VersionKey] = field(default_factory=list)
    seconds: float = 0.0
    shared_items: int = 0
    """Items linked from versions published before (not downloaded), and their bytes."""
    shared_bytes: int = 0
    downloaded_bytes: int = 0
    """Bytes of remote items this run received from the remote (archives compressed): a resumed
    partial file's earlier bytes not included, an attempt that started over (its object changed, its
    digest did not match) included. Without such retries, `install --dry-run`'s `bytesToFetch`."""
    resumed_bytes: int = 0
    """Bytes an earlier, interrupted run left in staging that this one kept instead of fetching: its
    finished items and the recorded parts of its partial files (`install --dry-run`'s `bytesStaged`)."""
    unreferenced: list[VersionKey] = field(default_factory=list)
    """Versions the ref named before and no longer names (gc may remove them)."""


def build_ref(spec: DatasetCacheSpec, name: str) -> Ref:
    """Pure: the ref a spec leads to."""
    entries = [
        RefEntry(
            data_type=item.data_type,
            source=item.source,
            version=item.version,
            link_strategy=LINK_STRATEGY_IN_REF[item.link],
            env=item.env_name,
        )
        for item in sorted(spec.versions, key=lambda i: i.key)
    ]
    return Ref(name=name, versions=entries, remote=spec.source.display_url(), updated_at=now_iso())


def merge_ref(old: Ref | None, new: Ref) -> Ref:
    """Pure: `new` plus the entries of `old` for data types and sources `new` does not name (a ref
    names one version per source: a new version of a source replaces the old one). A slot both name
    keeps `old`'s per-item settings (`envName`, `link`): `new` comes from command-line flags, which
    cannot express them, and dropping them would change what pods see (their variable, PerFile
    links) without anyone asking; a `-f` install replaces the ref and sets them as its file says."""
    if old is None:
        return new
    before = {(e.data_type, e.source): e for e in old.versions}
    slots = {(e.data_type, e.source) for e in new.versions}
    kept = [e for e in old.versions if (e.data_type, e.source) not in slots]
    added = [
        e if (was := before.get((e.data_type, e.source))) is None
        else replace(e, link_strategy=was.link_strategy, env=was.env)
        for e in new.versions
    ]  # fmt: skip
    entries = sorted([*kept, *added], key=lambda e: e.key)
    return Ref(name=new.name, versions=entries, remote=new.remote, updated_at=new.updated_at)


def ref_clash(ref: Ref) -> str | None:
    """Pure: why pods could not link every version `ref` names (two sources of one data type that nest
    or differ only in case, `api.spec.slot_clash`: a spec refuses them, but installs by flags add to a
    ref one source at a time), or None."""
    keys = [e.key for e in ref.versions]
    for i, key in enumerate(keys):
        for other in keys[:i]:
            clash = slot_clash(other.slot, key.slot)
            if clash is not None:
                return (
                    f"ref {ref.name} would name {key} and {other}, and {key.slot} {clash} {other.slot}: "
                    f"pods could not link both; install it under another --ref (or give ref {ref.name} "
                    "exactly the versions it should name with install -f) (nothing was installed)"
                )
    return None


def env_clash(ref: Ref) -> str | None:
    """Pure: why pods could not get one environment variable per source `ref` names (two sources whose
    `envName`, or derived `DSCACHE_<DT>_<SRC>`, is the same: a spec refuses them, `prepare` would
    refuse the ref, and nothing on the command line could change it), or None."""
    seen: dict[str, VersionKey] = {}
    for entry in ref.versions:
        name = entry.env or derived_name(entry.key)
        other = seen.setdefault(name, entry.key)
        if other != entry.key:
            return (
                f"ref {ref.name} would name {entry.key} and {other}, and both get environment variable "
                f"{name}: give one an envName in a DatasetCache file (install -f), or release one "
                f"(dscache release --ref {ref.name}) (nothing was installed)"
            )
    return None


def refuse_clashes(ref: Ref) -> None:
    """Raise RefClashError (`ref_clash`) or EnvClashError (`env_clash`) when pods could not use every
    version `ref` names."""
    clash = ref_clash(ref)
    if clash is not None:
        raise RefClashError(clash)
    same_env = env_clash(ref)
    if same_env is not None:
        raise EnvClashError(same_env)


def unreferenced(old: Ref | None, new: Ref) -> list[VersionKey]:
    """Pure: the versions `old` names and `new` does not, sorted."""
    named = {e.key for e in new.versions}
    return sorted({e.key for e in old.versions if e.key not in named}) if old is not None else []


def target_ref(cache: CachePaths, spec: DatasetCacheSpec, name: str, merge: bool) -> tuple[Ref | None, Ref]:
    """(the ref now, the ref the install writes). Merging needs the ref now: RefError if unreadable;
    replacing does not: an unreadable ref is replaced. The ref's remote is where its versions came
    from (`provenance.ref_remote`)."""
    new = build_ref(spec, name)
    try:
        old = read_ref(cache, name)
    except RefError:
        if merge:
            raise
        old = None
    ref = merge_ref(old, new) if merge else new
    ref.remote = ref_remote(cache, (e.key for e in ref.versions), new.remote)  # where they came from
    ref.origin = "file" if not merge else "flags" if old is None or old.origin == "flags" else ""
    return old, ref


def _same_ref(a: Ref | None, b: Ref) -> bool:
    return a is not None and a.versions == b.versions and a.remote == b.remote


def default_remote_factory(spec: DatasetCacheSpec) -> Remote:
    from dscache.remotes.factory import open_remote

    return open_remote(spec.source)


def quick_opener(spec: DatasetCacheSpec, factory: RemoteFactory) -> Callable[[], Remote]:
    """How to open the remote to compare present versions with it: with `provenance.QUICK`, or with a
    factory given instead of the default as it is."""
    if factory is not default_remote_factory:
        return lambda: factory(spec)

    def quick() -> Remote:
        from dscache.remotes.factory import open_remote

        return open_remote(spec.source, QUICK)

    return quick


def revision_per_version(spec: DatasetCacheSpec) -> bool:
    """Each version is an HF revision of the whole repo (files layout): one remote per version."""
    hf = spec.source.hugging_face
    return hf is not None and hf.revision_from_version


def with_hf_revision(spec: DatasetCacheSpec, revision: str | None) -> DatasetCacheSpec:
    """Pure: the spec reading its HF repo at `revision` (unchanged for other sources or no revision)."""
    hf = spec.source.hugging_face
    if hf is None or revision is None:
        return spec
    source = spec.source.model_copy(update={"hugging_face": hf.model_copy(update={"revision": revision})})
    return spec.model_copy(update={"source": source})


def plan_version(remote: Remote, spec: DatasetCacheSpec, key: VersionKey) -> VersionPlan:
    """Fetch the metadata of one version and plan its transfer (digests dropped if `verify` is off).
    Raises LayoutError or RemoteError, whose message names the version."""
    try:
        return _plan_version(remote, spec, key)
    except (LayoutError, RemoteError) as err:
        text = plan_failure(key, err)
        if text == str(err):
            raise
        if isinstance(err, InvalidInputError):
            raise PlanInputError(text) from None
        raise LayoutError(text) from None


def _plan_version(remote: Remote, spec: DatasetCacheSpec, key: VersionKey) -> VersionPlan:
    if spec.layout == "Files":
        hf = spec.source.hugging_face
        plan = plan_files(
            remote,
            key,
            base="" if revision_per_version(spec) else key.rel,
            allow=hf.allow_patterns if hf else None,
            ignore=hf.ignore_patterns if hf else None,
        )
    else:
        shard_index = None
        if spec.source.hugging_face is not None:
            from dscache.layouts.hfindex import shard_locations  # imports yaml: only for HF sources

            shard_index = shard_locations(remote, spec.source.hugging_face.prefix, key)
        plan = settled_plan(
            lambda: plan_archives(remote, key, shard_index), remote, f"{key.rel}/{MOLMO_REMOTE_MANIFEST}"
        )
    if not spec.install.verify:
        plan.items = [replace(item, sha256=None, verify=False) for item in plan.items]
    return plan


def staggered_starts(tasks: int, jobs: int) -> int:
    """Pure: how many of the first `tasks` (of one large item each) start one after another rather
    than at once (1: none is held).

    Workers that start alike items at once finish them in step, for they share one link evenly; then
    all of them are between items at the same moments (finishing the last part, sending the next
    item's first request and waiting for its first byte, which the other parts wait for), and the link
    idles at each of those moments. Traced in the benchmark's network model (60 x 50 MB archives, 4
    workers, 100 MB/s): items ended in step every 2 s, and the link lost 0.08-0.35 s per install in 6
    runs (0.49 and 0.57 s in two with unequal stream counts per item, which did not break the step);
    with the first items started one first-byte time (about 40 ms) apart, 0.13-0.20 s in 13, the
    slower start included, and the installs ended within 29.86-29.96 s instead of 29.82-30.19 s. So the
    first item of each worker starts one first-byte time after the one before (`WorkerPool.wait_first_byte`;
    all of them within `STAGGER_SPREAD`), but only when workers will move on to further items (more
    tasks than `jobs`); the offsets persist, since alike items take alike times.
    """
    return min(jobs, tasks) if tasks > jobs else 1


def _start(
    pool: WorkerPool,
    tasks: list[tuple[VersionPlan, list[WorkItem]]],
    cache: CachePaths,
    jobs: int,
    *,
    streams: int,
    small_streams: int,
) -> dict[Future[list[ItemResult]], VersionPlan]:
    """Submit `tasks` (`batched`) to `pool`: a large item over up to `streams` streams, the first ones
    one after another (`staggered_starts`), and a batch of small files `small_streams` at a time, at
    once (a batch keeps its threads busy to its last file whatever the others do)."""
    futures: dict[Future[list[ItemResult]], VersionPlan] = {}
    held = staggered_starts(sum(len(items) == 1 for _plan, items in tasks), jobs)
    step = STAGGER_SPREAD / max(held - 1, 1)  # the most one offset may be
    first: Future[list[ItemResult]] | None = None  # the first large item's task
    started, since, gap = 0, 0.0, 0.0
    for plan, items in tasks:
        large = len(items) == 1
        if large and first is not None and started < held:
            if started == 1:  # the wait for the first item's first byte is the offset
                pool.wait_first_byte(first, step)
                gap = min(time.monotonic() - since, step)
            else:
                time.sleep(gap)
        width = streams if large else small_streams
        future = pool.submit_batch(plan.key, items, cache.staging_dir(plan.key), width)
        futures[future] = plan
        if large and first is None:
            first, since = future, time.monotonic()  # submitted: the workers are forked by then
        started += large
    return futures


def batched(
    todo: list[tuple[VersionPlan, WorkItem]], small: int, size: int
) -> list[tuple[VersionPlan, list[WorkItem]]]:
    """Pure: the tasks for the worker pool, in the order of `todo`: an archive, or a file of more
    than `small` bytes, alone; smaller files of one version together, `size` at most per task
    (archives are extracted in processes: threads convoy on the GIL, see `workers.py`)."""
    tasks: list[tuple[VersionPlan, list[WorkItem]]] = []
    open_batch: dict[VersionKey, list[WorkItem]] = {}
    for plan, item in todo:
        if item.kind != "file" or item.expected_bytes > small:
            tasks.append((plan, [item]))
            continue
        batch = open_batch.get(plan.key)
        if batch is None or len(batch) >= size:
            batch = open_batch[plan.key] = []
            tasks.append((plan, batch))
        batch.append(item)
    return tasks


def check_space(
    cache_root: Path, plans: list[VersionPlan], done: Mapping[VersionKey, Collection[str]]
) -> None:
    """Fail early when the volume cannot hold the versions, counted as the file system allocates them
    (`space.py`); `done`: per version, the items already in staging or linked."""
    have = room(cache_root)
    if have is None:
        return
    need = sum((version_need(p, have.block, done.get(p.key, ())) for p in plans), Need())
    problem = shortage(need, have)
    if problem is not None:
        raise InstallError(
            f"not enough free space on {cache_root} (the file system mounted at {mount_point(cache_root)}): "
            f"{problem}; free space there or remove versions no ref uses ({gc_command(cache_root)})"
        )


def no_space_message(cache_root: Path, err: OSError) -> str:
    """Pure but for finding the mount point: the one line for an install that ran out of room (ENOSPC)
    or quota (EDQUOT) on the cache's file system."""
    what = "its quota for this user is used up" if err.errno == errno.EDQUOT else "it is full"
    return (
        f"{err.filename or cache_root}: {err.strerror} (the file system of {cache_root}, mounted at "
        f"{mount_point(cache_root)}: {what}); free space there or remove versions no ref uses "
        f"({gc_command(cache_root)}), then run the install again: it resumes from what it finished"
    )


def gc_command(cache_root: Path) -> str:
    """Pure: the gc that removes every version no ref uses from `cache_root`, as a shell command."""
    return f"dscache gc --cache {shlex.quote(str(cache_root))} --keep 0"


@dataclass(frozen=True)
class _Origin:
    """Where one version comes from: its remote pinned at `revision`, and the spec that reopens it so."""

    remote: Remote
    revision: str | None
    spec: DatasetCacheSpec


class InstallRun:
    """One locked install of the missing versions: `run` does it all; the team path
    (`teamwork.py`) calls its steps, `plan`, `dedupe` and `commit`, itself."""

    def __init__(
        self,
        cache: CachePaths,
        spec: DatasetCacheSpec,
        factory: RemoteFactory,
        jobs: int,
        sink: Sink,
        *,
        fence: Fence,
        worker_fence: Fence,
        repair: Mapping[VersionKey, frozenset[str] | None] | None = None,
    ):
        self.cache, self.spec, self.factory, self.jobs, self.sink = cache, spec, factory, jobs, sink
        self.fence, self.worker_fence = fence, worker_fence
        self.repair = repair or {}
        self.counters = Counters()
        self.origins: dict[VersionKey, _Origin] = {}
        self.shared: list[ItemResult] = []
        self.downloaded = 0
        self.resumed = 0

    def plan(self, missing: list[VersionKey]) -> list[VersionPlan]:
        """Pin each version's remote at its revision (into `origins`) and plan its items, in the order
        of `missing`. Raises `RemoteError`, `LayoutError`. The extractor is imported meanwhile, for
        the workers to inherit (`preload.py`): `ExtractorUnavailableError` if it cannot be."""
        with extractor_preloaded(self.spec.layout == "Archives"):
            if revision_per_version(self.spec):
                for key in missing:
                    remote = self.factory(with_hf_revision(self.spec, key.version))
                    revision = remote.resolve_revision()
                    self.origins[key] = _Origin(remote, revision, with_hf_revision(self.spec, revision))
            else:
                remote = self.factory(self.spec)
                revision = remote.resolve_revision()
                shared = _Origin(remote, revision, with_hf_revision(self.spec, revision))
                self.origins = dict.fromkeys(missing, shared)
            return [plan_version(self.origins[k].remote, self.spec, k) for k in missing]

    def run(self, missing: list[VersionKey]) -> list[VersionKey]:
        """Plan, dedupe, ingest and commit the `missing` versions; the keys published, in order."""
        plans = self.plan(missing)
        results: dict[VersionKey, list[ItemResult]] = {p.key: [] for p in plans}
        todo: list[tuple[VersionPlan, WorkItem]] = []
        for plan in plans:
            staging = StagingPaths(self.cache.staging_dir(plan.key))
            logged = digestlog.load(staging.root)
            for item in plan.items:
                done = item_done(staging, item, logged)
                if done is None:
                    todo.append((plan, item))
                else:
                    results[plan.key].append(done)
                    self.resumed += done.size
        todo = self._reuse(todo, results)
        todo = self.dedupe(todo, results)
        done_bytes = sum(r.size for rs in results.values() for r in rs)
        check_space(self.cache.root, plans, {k: {r.item.name for r in rs} for k, rs in results.items()})
        self.counters.bytes_total = sum(p.download_bytes for p in plans)
        self.counters.items_total = sum(len(p.items) for p in plans)
        self.counters.set_bytes(done_bytes)
        done_items = sum(len(rs) for rs in results.values())
        self.counters.set_items(done_items)
        self.sink.emit(
            "start",
            {
                "remote": self.spec.source.display_url(),
                "revisions": {str(k): o.revision for k, o in self.origins.items() if o.revision},
                "versions": [str(k) for k in missing],
                "shared": {"items": len(self.shared), "bytes": sum(r.size for r in self.shared)},
                **self.counters.snapshot(),
            },
        )
        published: list[VersionKey] = []
        remaining = {p.key: len(p.items) - len(results[p.key]) for p in plans}
        for plan in plans:
            if remaining[plan.key] == 0:
                published.append(self.commit(plan, results[plan.key]))

        told = False

        def ingested(plan: VersionPlan, batch: list[ItemResult]) -> None:
            nonlocal told
            if not told and any(r.range_ignored for r in batch):
                told = True
                log.debug("%s: %s", self.spec.source.display_url(), RANGE_IGNORED)
            results[plan.key].extend(batch)
            remaining[plan.key] -= len(batch)
            if remaining[plan.key] == 0:
                published.append(self.commit(plan, results[plan.key]))

        def tick(transferred: int, finished: int) -> None:
            self.counters.set_bytes(done_bytes + transferred)
            self.counters.set_items(done_items + finished)  # files of a batch as each lands
            self.sink.emit("progress", self.counters.snapshot())

        self.downloaded, resumed = self.ingest(todo, ingested, tick)  # last tick: before the last commit
        self.resumed += resumed
        return published

    def ingest(
        self,
        todo: list[tuple[VersionPlan, WorkItem]],
        done: Callable[[VersionPlan, list[ItemResult]], None],
        tick: Callable[[int, int], None],
    ) -> tuple[int, int]:
        """Transfer and verify the items of `todo` into their versions' staging dirs through one pool
        of `jobs` worker processes: most work first (`WorkItem.work`), a large item over several
        streams, small files of one version in batches fetched several at a time (`batched`).
        `done(plan, results)` gets each finished task's results (one item, or a batch of small files of
        `plan`); `tick(bytes, items)` comes every TICK seconds and before the `done` calls of the tasks
        that finished, the last one included, with the bytes transferred and the items finished so far
        (a batch's files counted as each lands).
        The fence is checked every tick. Returns (the bytes received from the remote, the bytes of
        partial files an earlier run left that the transfers kept: `WorkerPool`). Raises what
        `fetch_item` raises, or `RepublishedError` when an item failed because its version was
        republished meanwhile."""
        # Most work first: the long items start at once instead of trailing behind the pool.
        todo = sorted(todo, key=lambda planned: -planned[1].work)
        specs = {key: origin.spec for key, origin in self.origins.items()}
        jobs = min(self.jobs, max(len(todo), 1))
        budget = PartPolicy.from_env().streams
        streams = streams_per_item(budget, jobs, len(todo))
        small_streams = min(SMALL_THREADS, streams_per_item(SMALL_STREAMS_FACTOR * budget, jobs, jobs))
        with (
            WorkerPool(jobs, specs, self.factory, self.worker_fence) as pool,
            BackgroundFlush(self.cache.root) as flush,
        ):
            tasks = batched(todo, SMALL_ITEM, SMALL_BATCH)
            futures = _start(pool, tasks, self.cache, jobs, streams=streams, small_streams=small_streams)
            while futures:
                finished, _ = wait(futures, timeout=TICK, return_when=FIRST_COMPLETED)
                self.fence()  # a holder that lost the lock stops its workers within a tick
                # progress first: a version's `published` (from `done`) follows its last bytes
                tick(pool.transferred, pool.finished)
                for fut in finished:
                    plan = futures.pop(fut)
                    if not futures:
                        pool.close()  # its workers exit while the last version commits
                    try:
                        batch = fut.result()
                    except ItemFailedError:
                        if republished(self.origins[plan.key].remote, plan):
                            raise republished_error(plan) from None
                        raise
                    flush.request()
                    done(plan, batch)
            return pool.received, pool.resumed

    def _reuse(
        self, todo: list[tuple[VersionPlan, WorkItem]], results: dict[VersionKey, list[ItemResult]]
    ) -> list[tuple[VersionPlan, WorkItem]]:
        """A repair: link the intact items of the version being replaced (`share.intact`) into
        `results`; the items left to transfer (the damaged ones)."""
        if not self.repair:
            return todo
        held = {
            key: {found.name: found for found in read_items(key, self.cache.version_dir(key))[1]}
            for key in self.repair
        }
        rest: list[tuple[VersionPlan, WorkItem]] = []
        for plan, item in todo:
            found = held.get(plan.key, {}).get(item.name)
            result = None
            if found is not None and intact(found, item, self.repair[plan.key]):
                staging = StagingPaths(self.cache.staging_dir(plan.key))
                result = reuse_item(found, item, staging, self.fence)
            if result is None:
                rest.append((plan, item))
            else:
                results[plan.key].append(result)
        return rest

    def dedupe(
        self, todo: list[tuple[VersionPlan, WorkItem]], results: dict[VersionKey, list[ItemResult]]
    ) -> list[tuple[VersionPlan, WorkItem]]:
        """Link the items whose bytes published versions hold (`share.py`) into staging, their results
        appended to `results` (a list per version key of `todo`) and to `shared`; the items left to
        ingest, in the order of `todo`."""
        if not any(item.stated for _plan, item in todo):
            return todo
        index = ShareIndex.load(self.cache, exclude=self.repair)
        rest: list[tuple[VersionPlan, WorkItem]] = []
        for plan, item in todo:
            staging = StagingPaths(self.cache.staging_dir(plan.key))
            shared = share_item(index, plan.layout, item, staging, self.fence)
            if shared is None:
                rest.append((plan, item))
            else:
                results[plan.key].append(shared)
                self.shared.append(shared)
        return rest

    def commit(
        self, plan: VersionPlan, results: list[ItemResult], *, fence: Fence | None = None
    ) -> VersionKey:
        """Publish the version of `plan` from its staged, verified `results` (one per item), under
        `fence` (default: this run's; raises `LockLostError` once the lock is lost); its key."""
        fence = fence or self.fence
        started = time.monotonic()
        origin = self.origins[plan.key]
        revision = origin.revision
        try:
            record = promote(self.cache, plan, results, origin.remote.url, revision, fence=fence)
        except ArchiveRejectedError as err:  # archives that cannot make one version: name it
            item = next((i for i in plan.items if i.name == err.archive), None)
            if item is None:
                raise
            raise item_failure(plan.key, item, err) from None
        fence()
        record_molmo_version(self.cache, plan.key)
        self.sink.emit(
            "version_published",
            {
                "version": str(plan.key),
                "files": record.files,
                "bytes": record.bytes,
                "sharedItemBytes": sum(r.size for r in results if r.shared_from is not None),
                "revision": revision,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return plan.key


def remove_empty_dirs(made: list[Path]) -> None:
    """Remove the directories a failed install created (`made`, deepest first) as long as they hold
    nothing but empty directories: a run that failed before staging anything leaves no trace (its lock
    marker is gone once released). Only `rmdir`, so nothing anyone wrote meanwhile is deleted."""
    for top in made:
        for dirpath, _dirs, _files in os.walk(top, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError:
                return


def install(
    spec: DatasetCacheSpec,
    cache_root: Path,
    ref_name: str,
    sink: Sink,
    *,
    jobs: int | None = None,
    lock_timeout: float = 600.0,
    remote_factory: RemoteFactory = default_remote_factory,
    repair: Mapping[VersionKey, frozenset[str] | None] | None = None,
    merge: bool = False,
) -> InstallResult:
    """Make every version of `spec` published in `cache_root` and point ref `ref_name` at them.

    `merge`: add them to the ref (`merge_ref`; the command line's `--source` installs), else the ref
    names exactly them (a manifest, the operator). What the ref no longer names is `unreferenced`.
    Raises InstallError (an unreadable ref to merge into among them).

    `repair`: published versions of `spec` to publish afresh, each with the paths `verify` found
    missing or changed (None: all of it suspect): their intact items are linked from the published
    version, the others fetched, and the new copy replaces the old one atomically (`promote`,
    `replace_published`); the old one is never modified in place.
    """
    try:
        PartPolicy.from_env()  # a bad DSCACHE_STREAMS or DSCACHE_PART_SIZE: refused before any request
    except RemoteError as err:
        raise install_error(err) from None
    repair = {k: v for k, v in (repair or {}).items() if k in spec.version_keys()}
    started = time.monotonic()
    cache = CachePaths(cache_root)
    keys = spec.version_keys()
    made = [d for d in (cache.root, *cache.root.parents) if not d.exists()]
    if cache.root.exists():
        made = [] if cache.control.exists() else [cache.control]
    cache.root.mkdir(parents=True, exist_ok=True)
    missing = [k for k in keys if k in repair or not is_installed(cache, k)]
    warn_differences(cache, spec, [k for k in keys if k not in missing])
    warn_republished(cache, spec, [k for k in keys if k not in missing], quick_opener(spec, remote_factory))
    published: list[VersionKey] = []
    shared: list[ItemResult] = []
    downloaded = resumed = 0
    dropped: list[VersionKey] = []
    try:
        check_writable(cache, install_writes(missing, repair=bool(repair)))
        old, ref = target_ref(cache, spec, ref_name, merge)
        refuse_clashes(ref)
        if missing or not _same_ref(old, ref):
            with WriterLock(cache.lock_path, timeout=lock_timeout) as lock:
                old, ref = target_ref(cache, spec, ref_name, merge)
                missing = [k for k in missing if k in repair or not is_installed(cache, k)]
                if missing:
                    check_ours(cache, missing)
                    jobs = jobs or spec.install.parallelism
                    run = InstallRun(
                        cache,
                        spec,
                        remote_factory,
                        jobs,
                        sink,
                        fence=lock.fence,
                        worker_fence=lock.worker_fence(),
                        repair=repair,
                    )
                    published = run.run(missing)
                    shared, downloaded, resumed = run.shared, run.downloaded, run.resumed
                lock.fence()
                ref.remote = ref_remote(cache, (e.key for e in ref.versions), spec.source.display_url())
                ref.write(cache)
                dropped = unreferenced(old, ref)
    except INSTALL_FAILURES as err:
        remove_empty_dirs(made)
        raise install_error(err) from None
    except OSError as err:
        remove_empty_dirs(made)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InstallError(no_space_message(cache_root, err)) from None
        raise InstallError(f"{err.filename or cache_root}: {err.strerror}") from None
    result = InstallResult(
        ref=ref_name,
        published=published,
        present=[k for k in keys if k not in published],
        seconds=time.monotonic() - started,
        shared_items=len(shared),
        shared_bytes=sum(r.size for r in shared),
        downloaded_bytes=downloaded,
        resumed_bytes=resumed,
        unreferenced=dropped,
    )
    sink.emit(
        "done",
        {
            "ref": ref_name,
            "published": [str(k) for k in result.published],
            "present": [str(k) for k in result.present],
            "shared": {"items": result.shared_items, "bytes": result.shared_bytes},
            "downloadedBytes": result.downloaded_bytes,
            "resumedBytes": result.resumed_bytes,
            "seconds": round(result.seconds, 3),
            "unreferenced": [str(k) for k in result.unreferenced],
        },
    )
    return result
