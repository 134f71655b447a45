"""Release a ref: drop it and remove the versions only it used (a DatasetCache's `onDelete: Delete`).

Removal is gc's (`remove_version`: rename into the trash, then delete), so readers see whole versions;
entries that cannot be deleted yet (busy on NFS) are left for a later run and reported.
"""

from __future__ import annotations

from collections.abc import Iterable

from dscache.api.names import VersionKey
from dscache.maintain.gc import GcPlan, empty_trash, note_leftover, remove_version
from dscache.store.lock import Fence
from dscache.store.paths import CachePaths
from dscache.store.records import is_published, list_refs, read_ref


def release(
    cache: CachePaths, ref_name: str, fence: Fence, protect: Iterable[VersionKey] = ()
) -> GcPlan | None:
    """Drop ref `ref_name` and remove the versions only it used; None if there is no such ref.

    Versions another ref or a protected pod uses are kept. The trash is finished first, versions go
    next and the ref last, so a release that crashes midway is simply run again. Caller holds the
    writer lock; `fence` is its fence.
    """
    ref = read_ref(cache, ref_name)
    if ref is None:
        return None
    others = {e.key for r in list_refs(cache) if r.name != ref_name for e in r.versions}
    kept = others | set(protect)
    left, freed = empty_trash(cache, fence)
    plan = GcPlan(left=left, freed=freed)
    for entry in ref.versions:
        if entry.key in kept:
            plan.keep.append(entry.key)
        elif is_published(cache, entry.key):
            note_leftover(plan, remove_version(cache, entry.key, fence))
            plan.remove.append(entry.key)
    fence()
    cache.ref_path(ref_name).unlink(missing_ok=True)
    return plan
