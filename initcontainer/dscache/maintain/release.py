"""Release a ref: drop it and remove the versions only it used (a DatasetCache's `onDelete: Delete`).

Removal is gc's (`remove_version`: rename into the trash, then delete), so readers see whole versions.
"""

from __future__ import annotations

from collections.abc import Iterable

from dscache.api.names import VersionKey
from dscache.maintain.gc import GcPlan, remove_version
from dscache.store.paths import CachePaths
from dscache.store.records import is_published, list_refs, read_ref


def release(cache: CachePaths, ref_name: str, protect: Iterable[VersionKey] = ()) -> GcPlan | None:
    """Drop ref `ref_name` and remove the versions only it used; None if there is no such ref.

    Versions another ref or a protected pod uses are kept. Versions go first and the ref last, so a
    release that crashes midway is simply run again. Caller holds the writer lock.
    """
    ref = read_ref(cache, ref_name)
    if ref is None:
        return None
    others = {e.key for r in list_refs(cache) if r.name != ref_name for e in r.versions}
    kept = others | set(protect)
    plan = GcPlan()
    for entry in ref.versions:
        if entry.key in kept:
            plan.keep.append(entry.key)
        elif is_published(cache, entry.key):
            remove_version(cache, entry.key)
            plan.remove.append(entry.key)
    cache.ref_path(ref_name).unlink(missing_ok=True)
    return plan
