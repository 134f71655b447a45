"""Release a ref: drop it and remove the versions only it used (a DatasetCache's `onDelete: Delete`).

Removal is gc's (`remove_version`: rename into the trash, then delete), so readers see whole versions;
entries that cannot be deleted yet (busy on NFS) are left for a later run and reported.
"""

from __future__ import annotations

from collections.abc import Iterable

from dscache.api.names import VersionKey
from dscache.maintain.gc import GcPlan, check_protected, empty_trash, note_leftover, remove_version
from dscache.store.lock import Fence
from dscache.store.ownpaths import check_writable, removal_writes
from dscache.store.paths import CachePaths
from dscache.store.records import RefError, RefScan, is_published, read_ref, scan_refs


def release(
    cache: CachePaths,
    ref_name: str,
    fence: Fence,
    protect: Iterable[VersionKey] = (),
    in_use: Iterable[VersionKey] = (),
) -> GcPlan | None:
    """Drop ref `ref_name` and remove the versions only it used; None if there is no such ref.

    `in_use`: versions pods link, kept if present. Raises RefError if another ref is unreadable (it
    may name the versions this one uses), UnknownProtectError if a `protect` version is not
    published, NotWritableError if a path it would change is not writable (`store.ownpaths`; nothing
    is removed then). Ref `ref_name` unreadable itself: only its file is dropped (what it named is unknown).

    Versions another ref or a protected pod uses are kept. The trash is finished first, versions go
    next and the ref last, so a release that crashes midway is simply run again. Caller holds the
    writer lock; `fence` is its fence.
    """
    check_protected(cache, protect)
    path = cache.ref_path(ref_name)
    found = scan_refs(cache)
    own = [err for err in found.unreadable if err.path == path]
    if own:
        return _drop_unreadable(own[0], fence)
    others = RefScan([r for r in found.refs if r.name != ref_name], found.unreadable)
    kept = {e.key for r in others.check() for e in r.versions} | set(protect) | set(in_use)
    ref = read_ref(cache, ref_name)
    if ref is None:
        return None
    keep = [e.key for e in ref.versions if e.key in kept]
    remove = [e.key for e in ref.versions if e.key not in kept and is_published(cache, e.key)]
    check_writable(
        cache, removal_writes("release", ((cache.version_dir(k), f"version {k}") for k in remove), refs=True)
    )
    left, freed = empty_trash(cache, fence)
    plan = GcPlan(keep=keep, left=left, freed=freed)
    for key in remove:
        note_leftover(plan, remove_version(cache, key, fence))
        plan.remove.append(key)
    fence()
    cache.ref_path(ref_name).unlink(missing_ok=True)
    return plan


def _drop_unreadable(err: RefError, fence: Fence) -> GcPlan:
    """Drop the unreadable ref file of `err` and remove nothing else; a directory (dscache never makes
    one there) is left to its owner: RefError."""
    if not err.path.is_file():
        raise err
    fence()
    err.path.unlink(missing_ok=True)
    return GcPlan()
