"""Remove versions no ref (and no protected pod) uses, beyond the `keep` highest version names per
source (`api/versionorder.py`: digit runs compare as numbers, `v9 < v10`; install order plays no part).

Removal is rename-then-delete: a version (or an abandoned staging dir) leaves its path in one
`rename()` into the trash, so a reader sees the whole version or none of it and a resumed install never
sees half a staging dir; deletion happens afterwards, out of sight. What cannot be deleted yet (a file
a pod still holds open on NFS: `.nfsXXXX`, EBUSY) stays in the trash and is reported as `left`; every
gc and release first finishes the trash, so the job completes once the file is released. Every step
that changes the cache is preceded by the writer lock's fence: a gc or release whose lock was taken
over stops before it.

Versions share bytes (hard links, `install/share.py`): removing one frees only the files whose last
link goes with it, and `freed` counts exactly those bytes (`store/usage.py`), measured as they go; a
dry run counts what removing all planned versions and staging dirs together would free.

A version or staging dir that cannot be moved to the trash (a read-only mount, the trash on another
file system, no permission) stays where it is, whole, and is reported in `failed` with the reason in
words; gc goes on with the others.
"""

from __future__ import annotations

import errno
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.api.versionorder import version_order
from dscache.errors import InvalidInputError
from dscache.layouts.molmospaces import forget_molmo_version
from dscache.store.catalog import catalog
from dscache.store.deletion import Leftover
from dscache.store.lock import Fence
from dscache.store.ownpaths import check_writable, removal_writes
from dscache.store.paths import CachePaths
from dscache.store.records import CompleteRecord, is_published
from dscache.store.staged import find_stages
from dscache.store.usage import Amount, delete_counted, freeable, scan_inodes


class NotMovedError(OSError):
    """A version could not be moved to the trash (the OSError's errno, strerror and filename); it is
    untouched."""


@dataclass(frozen=True)
class NotRemoved:
    """`path` (a version or staging dir) stays where it was: moving it to the trash failed, `reason`."""

    path: Path
    reason: str


def removal_reason(err: OSError, cache: CachePaths) -> str:
    """Pure: why moving a directory of `cache` into its trash failed, in words (the library's wording
    for errors without one of their own)."""
    if err.errno == errno.EXDEV:
        return f"the trash is on another file system than the cache: {cache.trash_dir}"
    if err.errno == errno.EROFS:
        return "it is on a read-only file system (a read-only mount?)"
    if err.errno == errno.EBUSY:
        return "it is busy (a mount point?)"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied (it or its parent directory is not writable by this user)"
    return err.strerror or str(err)


@dataclass
class GcPlan:
    remove: list[VersionKey] = field(default_factory=list)
    keep: list[VersionKey] = field(default_factory=list)
    stale_staging: list[Path] = field(default_factory=list)
    left: list[Leftover] = field(default_factory=list)
    failed: list[NotRemoved] = field(default_factory=list)
    """Versions and staging dirs planned for removal that could not be moved to the trash (still in
    place, whole); those versions are no longer in `remove` nor those dirs in `stale_staging`."""
    freed: Amount = field(default_factory=Amount)
    """Bytes (content and on disk) of the files whose last link was removed (a dry run: would be)."""


def plan_gc(records: Iterable[CompleteRecord], in_use: set[VersionKey], keep: int) -> GcPlan:
    """Pure: per data type and source, keep what is in use plus the `keep` others with the highest
    version names (`version_order`), whenever they were installed."""
    by_slot: dict[tuple[str, str], list[CompleteRecord]] = {}
    for rec in records:
        by_slot.setdefault((rec.data_type, rec.source), []).append(rec)
    plan = GcPlan()
    for recs in by_slot.values():
        unused = sorted(
            (r for r in recs if r.key not in in_use), key=lambda r: version_order(r.version), reverse=True
        )
        plan.keep.extend(r.key for r in recs if r.key in in_use)
        plan.keep.extend(r.key for r in unused[:keep])
        plan.remove.extend(r.key for r in unused[keep:])
    plan.keep.sort()
    plan.remove.sort()
    return plan


def empty_trash(cache: CachePaths, fence: Fence) -> tuple[list[Leftover], Amount]:
    """Finish deletions an earlier gc or release started: (what still refuses, bytes freed)."""
    try:
        names = sorted(os.listdir(cache.trash_dir))
    except FileNotFoundError:
        return [], Amount()
    left: list[Leftover] = []
    freed = Amount()
    for name in names:
        fence()
        leftover, count = delete_counted(cache.trash_dir / name)
        freed += count
        if leftover is not None:
            left.append(leftover)
    return left, freed


def _to_trash(cache: CachePaths, path: Path, label: str) -> Path:
    cache.trash_dir.mkdir(parents=True, exist_ok=True)
    grave = cache.trash_dir / f"{label.replace('/', '__')}.{secrets.token_hex(4)}"
    mode = os.lstat(path).st_mode & 0o7777
    os.chmod(path, 0o755)  # moving a directory to another parent rewrites its '..'
    try:
        os.rename(path, grave)
    except OSError:
        os.chmod(path, mode)  # what stays in place stays as it was (a version: read-only)
        raise
    return grave


def remove_version(cache: CachePaths, key: VersionKey, fence: Fence) -> tuple[Leftover | None, Amount]:
    """Unpublish `key` atomically (rename into the trash), then delete it; returns what is left and
    the bytes freed (of the files whose last link it held). Raises NotMovedError, the version
    untouched, if it cannot be moved to the trash (`NotMovedError`)."""
    fence()
    try:
        grave = _to_trash(cache, cache.version_dir(key), key.rel)
    except OSError as err:
        raise NotMovedError(err.errno, err.strerror, err.filename) from err
    fence()
    forget_molmo_version(cache, key)
    return delete_counted(grave)


def stale_staging(cache: CachePaths, max_age: float, now: float) -> list[Path]:
    """Staging dirs of abandoned installs (`store/staged.py`, either layout): untouched for `max_age`
    seconds, or of published versions.

    Younger ones are kept: a rerun of that install resumes from them instead of downloading again.
    """
    return [s.path for s in find_stages(cache) if s.published or s.age(now) > max_age]


class UnknownProtectError(InvalidInputError):
    """A `--protect` version that is not published in the cache: a typo would protect nothing."""


def check_protected(cache: CachePaths, protect: Iterable[VersionKey]) -> None:
    """Raises UnknownProtectError naming the first of `protect` not published in `cache`."""
    for key in sorted(set(protect)):
        if not is_published(cache, key):
            raise UnknownProtectError(
                f"--protect {key}: no such version in {cache.root}; nothing removed "
                "(dscache status lists the versions)"
            )


def collect(
    cache: CachePaths,
    keep: int,
    fence: Fence,
    *,
    protect: Iterable[VersionKey] = (),
    in_use: Iterable[VersionKey] = (),
    dry_run: bool = False,
    staging_max_age: float = 7 * 24 * 3600,
) -> GcPlan:
    """Plan and (unless `dry_run`) carry out a gc. Caller holds the writer lock; `fence` is its fence.

    Raises RefError if a ref is unreadable, UnknownProtectError if a `protect` version is not
    published and NotWritableError if a path it would change is not writable (`store.ownpaths`):
    nothing is removed then. `in_use`: versions pods link, kept if present (a pod may
    link versions of another volume).
    """
    check_protected(cache, protect)
    infos = catalog(cache)
    used = {i.key for i in infos if i.refs} | set(protect) | set(in_use)
    plan = plan_gc((i.record for i in infos), used, keep)
    plan.stale_staging = stale_staging(cache, staging_max_age, time.time())
    if dry_run:
        plan.freed = freeable(scan_inodes([*map(cache.version_dir, plan.remove), *plan.stale_staging]))
        return plan
    removes = [(cache.version_dir(k), f"version {k}") for k in plan.remove]
    removes += [(p, f"abandoned staging {p.relative_to(cache.staging_root)}") for p in plan.stale_staging]
    check_writable(cache, removal_writes("gc", removes))
    plan.left, plan.freed = empty_trash(cache, fence)
    for key in list(plan.remove):
        try:
            note_leftover(plan, remove_version(cache, key, fence))
        except NotMovedError as err:
            plan.remove.remove(key)
            plan.failed.append(NotRemoved(cache.version_dir(key), removal_reason(err, cache)))
    for stage in list(plan.stale_staging):
        fence()
        try:
            grave = _to_trash(cache, stage, "staging/" + stage.relative_to(cache.staging_root).as_posix())
        except OSError as err:
            plan.stale_staging.remove(stage)
            plan.failed.append(NotRemoved(stage, removal_reason(err, cache)))
            continue
        note_leftover(plan, delete_counted(grave))
    return plan


def note_leftover(plan: GcPlan, removal: tuple[Leftover | None, Amount]) -> None:
    """Count a removal's freed bytes into `plan`, and note what it left for a later run, if anything."""
    leftover, freed = removal
    plan.freed += freed
    if leftover is not None:
        plan.left.append(leftover)
