"""Remove versions no ref (and no protected pod) uses, beyond the newest `keep` per source.

Removal is rename-then-delete: a version leaves its published path in one `rename()` into the trash,
so a reader sees the whole version or none of it; deletion happens afterwards, out of sight.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.layouts.molmospaces import forget_molmo_version
from dscache.store.catalog import catalog
from dscache.store.fsops import rmtree_readonly
from dscache.store.paths import COMPLETE_RECORD, CachePaths
from dscache.store.records import CompleteRecord


@dataclass
class GcPlan:
    remove: list[VersionKey] = field(default_factory=list)
    keep: list[VersionKey] = field(default_factory=list)
    stale_staging: list[Path] = field(default_factory=list)


def plan_gc(records: Iterable[CompleteRecord], in_use: set[VersionKey], keep: int) -> GcPlan:
    """Pure: per data type and source, keep what is in use plus the newest `keep` others."""
    by_slot: dict[tuple[str, str], list[CompleteRecord]] = {}
    for rec in records:
        by_slot.setdefault((rec.data_type, rec.source), []).append(rec)
    plan = GcPlan()
    for recs in by_slot.values():
        unused = sorted((r for r in recs if r.key not in in_use), key=lambda r: r.installed_at, reverse=True)
        plan.keep.extend(r.key for r in recs if r.key in in_use)
        plan.keep.extend(r.key for r in unused[:keep])
        plan.remove.extend(r.key for r in unused[keep:])
    plan.keep.sort()
    plan.remove.sort()
    return plan


def empty_trash(cache: CachePaths) -> None:
    """Finish deletions an earlier gc started."""
    if cache.trash_dir.is_dir():
        for entry in os.scandir(cache.trash_dir):
            rmtree_readonly(cache.trash_dir / entry.name)


def remove_version(cache: CachePaths, key: VersionKey) -> None:
    """Unpublish `key` atomically (rename into the trash), then delete it. Writer lock held."""
    src = cache.version_dir(key)
    cache.trash_dir.mkdir(parents=True, exist_ok=True)
    grave = cache.trash_dir / f"{key.rel.replace('/', '__')}.{secrets.token_hex(4)}"
    os.chmod(src, 0o755)  # moving a directory to another parent rewrites its '..'
    os.rename(src, grave)
    forget_molmo_version(cache, key)
    rmtree_readonly(grave)


def stale_staging(cache: CachePaths, max_age: float, now: float) -> list[Path]:
    """Staging dirs of abandoned installs: untouched for `max_age` seconds, or of published versions.

    Younger ones are kept: a rerun of that install resumes from them instead of downloading again.
    """
    stale: list[Path] = []
    root = cache.staging_root
    if not root.is_dir():
        return stale
    for marker in root.glob("*/**/archives"):  # <staging>/<dt>/<src...>/<ver>/archives
        version_stage = marker.parent
        rel = version_stage.relative_to(root).as_posix()
        published = (cache.root / rel / COMPLETE_RECORD).is_file()
        newest = max((p.stat().st_mtime for p in version_stage.iterdir()), default=0.0)
        if published or now - newest > max_age:
            stale.append(version_stage)
    return stale


def collect(
    cache: CachePaths,
    keep: int,
    protect: Iterable[VersionKey] = (),
    dry_run: bool = False,
    staging_max_age: float = 7 * 24 * 3600,
) -> GcPlan:
    """Plan and (unless `dry_run`) carry out a gc. Caller holds the writer lock."""
    infos = catalog(cache)
    in_use = {i.key for i in infos if i.refs} | set(protect)
    plan = plan_gc((i.record for i in infos), in_use, keep)
    plan.stale_staging = stale_staging(cache, staging_max_age, time.time())
    if not dry_run:
        empty_trash(cache)
        for key in plan.remove:
            remove_version(cache, key)
        for stage in plan.stale_staging:
            rmtree_readonly(stage)
    return plan
