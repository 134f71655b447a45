"""Put versions on node-local scratch: check, copy privately, rename into place.

Warm path (the copy is there): one record read, the cheap consistency check, one `utime`; no lock.
Cold path: clean up after dead processes; if a live process is already copying the version, wait for
its copy; else take the version's copy lock (copyclaim.py: pods that start together would otherwise
each copy), look again, make room (LRU eviction), copy into a private staging dir and rename it into
place, so the cache volume is read once per node, not once per pod. If a process that holds no lock
(an older dscache) got there first, its copy is used and ours dropped. Any failure to copy (disk
full, budget too small, unusable scratch, I/O error) falls back to the cache volume with a warning.
"""

from __future__ import annotations

import errno
import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dscache.api.durations import format_age
from dscache.api.names import VersionKey
from dscache.api.sizes import format_size
from dscache.prepare import eviction, holds, lastuse, space, staging
from dscache.prepare.consistency import is_consistent
from dscache.prepare.copyclaim import copy_claim
from dscache.prepare.copytree import copy_version
from dscache.prepare.exchange import exchange
from dscache.prepare.scratchpaths import ScratchPaths
from dscache.prepare.shared import make_shared_dirs
from dscache.prepare.space import space_claim
from dscache.prepare.treewalk import read_listing
from dscache.prepare.waiting import LOG_EVERY
from dscache.store.paths import CachePaths
from dscache.store.records import CompleteRecord, read_complete

RACE_RETRIES = 3
PEER_POLL = 0.1


@dataclass
class Placement:
    """Where a version's links point, and how it got there."""

    key: VersionKey
    path: Path
    on_scratch: bool
    copied: bool = False
    warning: str | None = None


def same_install(copy: CompleteRecord, cached: CompleteRecord) -> bool:
    """Whether a copy's record describes the very install now in the cache (not an older one)."""
    return (copy.key, copy.files, copy.bytes, copy.installed_at, copy.revision) == (
        cached.key,
        cached.files,
        cached.bytes,
        cached.installed_at,
        cached.revision,
    )


def is_valid_copy(path: Path, cached: CompleteRecord) -> bool:
    """A copy is trusted only with the cache's completion record and a passing consistency check."""
    record = read_complete(path)
    return record is not None and same_install(record, cached) and is_consistent(path, record)


class CopyRejected(Exception):
    """A copy that cannot be used (the message says why); the version falls back to the cache."""


class DamagedInCache(CopyRejected):
    """The cache's copy of the version is damaged (a file missing or unreadable, counts that differ
    from its record): it is linked from the cache as it is, with a warning saying how to repair it."""


def damaged_message(cache_root: Path, problem: str) -> str:
    """Pure: why a damaged version was not copied, and what repairs it, e.g. `the cache's copy is
    damaged: f1.bin is missing (/c/objects/thor/v3/f1.bin); `dscache verify --cache /c` lists the
    damage and the install command that repairs it`."""
    return (
        f"the cache's copy is damaged: {problem}; `dscache verify --cache {shlex.quote(str(cache_root))}` "
        "lists the damage and the install command that repairs it"
    )


def source_problem(source: Path, exc: OSError) -> str | None:
    """Pure: what an error reading the version at `source` says about a file of it (None: the error is
    not about a file of `source`, e.g. scratch is full)."""
    name = exc.filename if isinstance(exc.filename, str) else None
    if name is None or not name.startswith(f"{source}/"):
        return None
    rel = name.removeprefix(f"{source}/")
    if isinstance(exc, FileNotFoundError):
        return f"{rel} is missing ({name})"
    return f"{rel} cannot be read: {exc.strerror} ({name})"


def _make_room(
    scratch: ScratchPaths,
    key: VersionKey,
    need: int,
    max_bytes: int | None,
    *,
    protected: dict[VersionKey, str],
    reserved: int,
    log: Callable[[str], None],
) -> None:
    """Evict least-recently-used copies until `need` bytes fit; `protected` (version -> why it is in
    use) are never evicted; `reserved` bytes of `max_bytes` belong to other processes' copies in
    progress (space.py). Logs one line per eviction; raises CopyRejected if it cannot fit."""
    residents = [r for r in eviction.list_residents(scratch) if r.key != key]
    left = None if max_bytes is None else max(max_bytes - reserved, 0)
    budget = eviction.effective_budget(left, sum(r.bytes for r in residents), eviction.free_bytes(scratch))
    victims = eviction.plan_eviction(residents, set(protected), need, budget)
    if victims is None:
        kept = [f"{r.key} ({protected[r.key]})" for r in residents if r.key in protected]
        in_use = f" without evicting copies in use: {', '.join(kept)}" if kept else ""
        others = (
            f" beside {format_size(reserved)} other copies in progress will take"
            if left is not None and reserved
            else ""
        )
        raise CopyRejected(
            f"needs {format_size(need)}, scratch can hold at most {format_size(budget)}{others}{in_use}"
        )
    by_key = {r.key: r for r in residents}
    for victim in victims:
        staging.discard(scratch.version_dir(victim), scratch)
        lastuse.forget(scratch, victim)
        resident = by_key[victim]
        log(
            f"{victim}: evicted from scratch ({format_size(resident.bytes)}, least recently used: last "
            f"prepared {format_age(time.time() - resident.last_used)}, no links hold it) to make room "
            f"for {key}"
        )


def copy_progress_line(key: VersionKey, done: int, total: int, seconds: float) -> str:
    """Pure: a scratch copy's progress for the log, e.g.
    `objects/thor=v1: copying to scratch, 1.0 GiB of 4.0 GiB (25%), 100.0 MiB/s`."""
    done = min(done, total)
    percent = 100 if total == 0 else 100 * done // total
    rate = format_size(int(done / seconds)) if seconds > 0 else "?"
    return f"{key}: copying to scratch, {format_size(done)} of {format_size(total)} ({percent}%), {rate}/s"


@dataclass
class CopyProgress:
    """The copy's heartbeat: refreshes the staging dir's mtime and logs progress every `every` s."""

    stage: Path
    record: CompleteRecord
    log: Callable[[str], None]
    every: float
    begin: float = 0.0
    last: float = 0.0

    def __post_init__(self) -> None:
        self.begin = self.last = time.monotonic()

    def __call__(self, done: int) -> None:
        os.utime(self.stage)
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.log(copy_progress_line(self.record.key, done, self.record.bytes, now - self.begin))


def stale_reason(copy: CompleteRecord | None, cached: CompleteRecord) -> str:
    """Pure: why a copy on scratch is not the cache's install, e.g. `the cache holds another install
    of it (installed 2026-02-01T00:00:00Z, the copy 2026-01-01T00:00:00Z)`."""
    if copy is None:
        return "its completion record cannot be read"
    if not same_install(copy, cached):
        return (
            f"the cache holds another install of it (installed {cached.installed_at}, the copy "
            f"{copy.installed_at})"
        )
    return "it fails the consistency check"


def _replace(
    scratch: ScratchPaths, stage: Path, final: Path, record: CompleteRecord, log: Callable[[str], None]
) -> None:
    """Put the new copy in `stage` where the stale one at `final` is: swapped atomically where the
    system can (exchange.py), so links to it never dangle, then the old one is deleted; elsewhere
    moved away first, with a warning."""
    why = stale_reason(read_complete(final), record)
    if exchange(stage, final):
        log(f"{record.key}: replaced its copy on scratch ({why}); links to it now reach the new copy")
        staging.discard(stage, scratch)  # now the old copy
        return
    log(
        f"warning: {record.key}: replacing its copy on scratch ({why}) without an atomic swap (this "
        "system has no renameat2 RENAME_EXCHANGE): a pod reading it may find it missing for a moment"
    )
    staging.discard(final, scratch)
    os.rename(stage, final)


def _copy_into_place(
    scratch: ScratchPaths,
    cache: CachePaths,
    record: CompleteRecord,
    stage: Path,
    *,
    log: Callable[[str], None],
    log_every: float,
) -> bool:
    """Copy the version from `cache` into `stage` and put it in place on scratch (replacing a stale
    copy there); returns False if another process's valid copy won the race. Raises DamagedInCache if
    the cache's copy is damaged, CopyRejected or OSError otherwise."""
    source = cache.version_dir(record.key)
    final = scratch.version_dir(record.key)
    log(f"{record.key}: copying {format_size(record.bytes)} ({record.files} files) to scratch")
    try:
        try:
            stats = copy_version(
                source,
                stage,
                read_listing(source),
                heartbeat=CopyProgress(stage, record, log, log_every),
                heartbeat_every=min(staging.HEARTBEAT_EVERY, log_every),
            )
        except OSError as exc:
            problem = source_problem(source, exc)
            if problem is None:
                raise
            raise DamagedInCache(damaged_message(cache.root, problem)) from None
        if not stats.matches(record):
            raise DamagedInCache(
                damaged_message(
                    cache.root,
                    f"it holds {stats.files} files / {stats.bytes} bytes but its record says "
                    f"{record.files} / {record.bytes}",
                )
            )
        make_shared_dirs(final.parent)
        for _ in range(RACE_RETRIES):
            try:
                os.rename(stage, final)
                return True
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            if is_valid_copy(final, record):
                return False
            try:
                _replace(scratch, stage, final, record, log)
                return True
            except FileNotFoundError:
                continue  # the stale copy went meanwhile
        raise CopyRejected(f"{final} keeps being replaced by other processes")
    finally:
        if stage.exists():
            staging.discard(stage, scratch)


def _peer_copied(
    scratch: ScratchPaths, record: CompleteRecord, log: Callable[[str], None], log_every: float
) -> bool:
    """Wait while another live process copies this version; True if its copy arrived and is valid."""
    waited = False
    begin = said = time.monotonic()
    while staging.copy_in_progress(scratch, record.key):
        now = time.monotonic()
        if not waited or now - said >= log_every:
            log(f"{record.key}: waiting {now - begin:.0f}s for another process's copy to scratch")
            said = now
        waited = True
        time.sleep(PEER_POLL)
    return waited and is_valid_copy(scratch.version_dir(record.key), record)


@dataclass
class HoldPolicy:
    """Whose holds count (holds.py): every one but `own` (the record this prepare replaces), each
    judged by the limit its holder recorded. `warned`: warnings already logged."""

    own: Path | None
    warned: set[str] = field(default_factory=set)


def _in_use(
    scratch: ScratchPaths,
    requested: set[VersionKey],
    since: float,
    hold: HoldPolicy,
    log: Callable[[str], None],
) -> dict[VersionKey, str]:
    """Copies no eviction may take -> why: asked for now, prepared since `since` (a pod may be about
    to link them), or held by a links directory (a running pod reads them; an unreadable hold record
    holds every copy). Logs each unreadable record's warning once."""
    now = time.time()
    held = holds.holders(scratch, now=now, exclude=hold.own, prune=True)
    for warning in held.warnings:
        if warning not in hold.warned:
            hold.warned.add(warning)
            log(f"warning: {warning}")
    uses = lastuse.list_uses(scratch, now=now, fix_future=True)
    in_use: dict[VersionKey, str] = {}
    for key in {*held.by_key, *(u.key for u in uses)}:
        why = [f"linked by {', '.join(held.by_key[key])}"] if key in held.by_key else []
        why += [f"held by {name}" for name in held.everything]
        if why:
            in_use[key] = "; ".join(why)
    for use in uses:
        if use.last_used >= since:
            in_use.setdefault(use.key, f"prepared {format_age(now - use.last_used)}")
    for key in requested:
        in_use[key] = "requested by this prepare"
    return in_use


def _copy_or_share(
    scratch: ScratchPaths,
    cache: CachePaths,
    record: CompleteRecord,
    *,
    max_bytes: int | None,
    requested: set[VersionKey],
    in_use_since: float,
    hold: HoldPolicy,
    log: Callable[[str], None],
    log_every: float,
) -> bool:
    """Get a version onto scratch; True if this process made the copy, False if another one did."""
    if _peer_copied(scratch, record, log, log_every):
        return False
    said: list[float] = []

    def waiting(seconds: float) -> None:
        if not said or seconds - said[-1] >= log_every:
            log(f"{record.key}: waiting {seconds:.0f}s for another process's copy to scratch")
            said.append(seconds)

    with copy_claim(scratch, record.key, waiting, PEER_POLL):
        if is_valid_copy(scratch.version_dir(record.key), record):
            return False  # copied by the lock's holder since our first look
        said.clear()

        def waiting_space(seconds: float) -> None:
            if not said or seconds - said[-1] >= log_every:
                log(f"{record.key}: waiting {seconds:.0f}s for another process to decide on scratch space")
                said.append(seconds)

        with space_claim(scratch, waiting_space, PEER_POLL):  # decide and reserve as one step (space.py)
            _make_room(
                scratch,
                record.key,
                record.bytes,
                max_bytes,
                protected=_in_use(scratch, requested, in_use_since, hold, log),
                reserved=space.reserved_bytes(scratch),
                log=log,
            )
            stage = staging.new_staging(scratch, record.key)
            reservation = space.reserve(scratch, stage, record.bytes)
        try:
            return _copy_into_place(scratch, cache, record, stage, log=log, log_every=log_every)
        finally:
            space.release(reservation)


def _hold_early(
    scratch: ScratchPaths, links: Path, keys: list[VersionKey], hold_max: float, log: Callable[[str], None]
) -> None:
    """Hold every version this prepare means to link from scratch before evicting or copying any
    (a pending hold, holds.py): a copy already there must not go while another one is being made."""
    try:
        holds.write_hold(scratch, links, keys, hold_max=hold_max, pending=True)
    except OSError as exc:
        log(
            f"warning: could not record that {links} is about to use scratch copies ({exc}); another "
            "prepare may evict them once they were last prepared longer ago than --scratch-keep-recent"
        )


def place_on_scratch(
    scratch: ScratchPaths,
    cache: CachePaths,
    records: dict[VersionKey, CompleteRecord],
    max_bytes: int | None,
    log: Callable[[str], None],
    *,
    keep_recent: float = 0.0,
    links: Path | None = None,
    hold_max: float = holds.DEFAULT_MAX_AGE,
    log_every: float = LOG_EVERY,
) -> list[Placement]:
    """Make each version available on scratch if possible; never raises for scratch trouble.

    Copies used within `keep_recent` seconds before this call (or during it), and copies a live hold
    keeps (holds.py: `links`' own hold is being replaced and does not count; each unseen holder's
    counts for the `hold_max` it recorded) are not evicted. Before anything is evicted or copied,
    `links` (created if missing) gets a pending hold on every version in `records`, lasting
    `hold_max` seconds where it cannot be seen; the caller settles it once linked. `log`
    gets each copy's start, its progress every `log_every` seconds (`copy_progress_line`), its end,
    each eviction (version, size, why) and warnings (prefixed `warning: `).
    """
    in_use_since = time.time() - keep_recent
    placements: dict[VersionKey, Placement] = {}

    def fall_back(key: VersionKey, why: str, using: str = "using the cache volume") -> None:
        warning = f"{key}: not copied to scratch ({why}); {using}"
        log(f"warning: {warning}")
        placements[key] = Placement(key, cache.version_dir(key), on_scratch=False, warning=warning)

    try:
        for key in records:
            lastuse.touch(scratch.used_marker(key))
        staging.clean_abandoned(scratch)
        if links is not None:
            links.mkdir(parents=True, exist_ok=True)  # its hold's name needs its inode
        hold = HoldPolicy(holds.own_hold_path(scratch, links) if links is not None else None)
    except OSError as exc:
        for key in records:
            fall_back(key, f"scratch {scratch.root} is not usable: {exc}")
        return [placements[key] for key in records]
    if links is not None:
        _hold_early(scratch, links, list(records), hold_max, log)
    missing: list[VersionKey] = []
    for key, record in records.items():
        if is_valid_copy(scratch.version_dir(key), record):
            placements[key] = Placement(key, scratch.version_dir(key), on_scratch=True)
        else:
            missing.append(key)
    for key in missing:
        record = records[key]
        begin = time.monotonic()
        try:
            copied = _copy_or_share(
                scratch,
                cache,
                record,
                max_bytes=max_bytes,
                requested=set(records),
                in_use_since=in_use_since,
                hold=hold,
                log=log,
                log_every=log_every,
            )
        except DamagedInCache as exc:
            fall_back(key, str(exc), "linked from the cache volume as it is")
            continue
        except (OSError, CopyRejected, ValueError) as exc:
            fall_back(key, str(exc))
            continue
        how = "copied" if copied else "copied by another process"
        log(f"{key}: {how} to scratch ({format_size(record.bytes)}, {time.monotonic() - begin:.1f}s)")
        placements[key] = Placement(key, scratch.version_dir(key), on_scratch=True, copied=copied)
    return [placements[key] for key in records]
