"""Promote a fully transferred staging dir into a published, read-only version (the only publish step).

The version becomes visible by one `rename()` of a complete tree that already holds its completion
record, so a reader sees the whole version or nothing. Also keeps the volume a valid pre-populated
cache for molmospaces-resources readers (`cache_lock=False`): their per-archive flags in the version
and their local manifest at the cache root.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from dscache import __version__
from dscache.install.extract import FILE_MODE, ArchiveRejectedError, links_escaping
from dscache.install.ingest import ItemResult, StagingPaths
from dscache.layouts.molmospaces import molmo_extract_flag
from dscache.layouts.plan import VersionPlan
from dscache.store.atomic import fsync_dir, write_bytes_atomic, write_json_atomic
from dscache.store.fsops import FROZEN_DIR_MODE, freeze_dirs, merge_into, rmtree_readonly, sync_filesystem
from dscache.store.paths import INVENTORY, CachePaths
from dscache.store.records import ArchiveRecord, CompleteRecord


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def all_dirs(paths: Iterable[str], explicit: Iterable[str]) -> list[str]:
    """Pure: every directory of a version, parents first: the explicit ones and all parents of `paths`."""
    dirs = set(explicit)
    for path in [*paths, *dirs]:
        parent = path.rpartition("/")[0]
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    return sorted(dirs)


def build_inventory(
    plan: VersionPlan, results: Sequence[ItemResult]
) -> tuple[dict[str, int], dict[str, str]]:
    """Pure: the version's files and links, archives applied in name order (later ones win, as on disk)."""
    files: dict[str, int] = {}
    links: dict[str, str] = {}
    for res in sorted(results, key=lambda r: r.item.name):
        for path, size in res.extracted.files.items():
            links.pop(path, None)
            files[path] = size
        for path, target in res.extracted.links.items():
            files.pop(path, None)
            links[path] = target
    for name, content in plan.metadata.items():
        files[name] = len(content)
    if plan.layout == "archives":
        for res in results:
            files[molmo_extract_flag(res.item.name)] = 0
    return files, links


def promote(
    cache: CachePaths,
    plan: VersionPlan,
    results: Sequence[ItemResult],
    remote_url: str,
    revision: str | None,
    *,
    fence: Callable[[], None],
) -> CompleteRecord:
    """Assemble the staged version, write its records, and rename it into place.

    `fence` (the writer lock's) is called before the staging dir is touched and before the rename; it
    raises when another writer took the lock over, leaving staging to that writer.
    """
    fence()
    staging = StagingPaths(cache.staging_dir(plan.key))
    if plan.layout == "archives":
        tree = staging.tree
        tree.mkdir(parents=True, exist_ok=True)
        for res in sorted(results, key=lambda r: r.item.name):
            src = staging.archive_dir(res.item.name)
            if src.exists():
                merge_into(src, tree)
                os.rmdir(src)
            flag = tree / molmo_extract_flag(res.item.name)
            flag.touch()
            os.chmod(flag, FILE_MODE)
    else:
        tree = staging.files
        tree.mkdir(parents=True, exist_ok=True)
    _reject_escaping_links(staging, tree, results)
    for name, content in plan.metadata.items():
        write_bytes_atomic(tree / name, content, mode=FILE_MODE, durable=False)  # synced below
    files, links = build_inventory(plan, results)
    dirs = all_dirs([*files, *links], (d for r in results for d in r.extracted.dirs))
    freeze_dirs(tree, dirs)  # listed in the inventory so that copies keep empty directories too
    inventory = {"files": files, "links": links, "dirs": dirs}
    write_json_atomic(tree / INVENTORY, inventory, mode=FILE_MODE, pretty=False, durable=False)
    record = CompleteRecord(
        data_type=plan.key.data_type,
        source=plan.key.source,
        version=plan.key.version,
        remote=remote_url,
        layout=plan.layout,
        files=len(files) + len(links),
        bytes=sum(files.values()),
        revision=revision,
        installed_at=now_iso(),
        dscache_version=__version__,
        archives={r.item.name: ArchiveRecord(size=r.size, sha256=r.sha256) for r in results},
    )
    sync_filesystem(tree)
    record.write(tree)
    final = cache.version_dir(plan.key)
    final.parent.mkdir(parents=True, exist_ok=True)
    fence()
    os.rename(tree, final)
    os.chmod(final, FROZEN_DIR_MODE)
    fsync_dir(final.parent)
    rmtree_readonly(staging.root)
    return record


def _reject_escaping_links(staging: StagingPaths, tree: Path, results: Sequence[ItemResult]) -> None:
    """Symlinks may be safe one by one and still escape as a chain; resolve them in the assembled tree."""
    for res in sorted(results, key=lambda r: r.item.name):
        bad = links_escaping(tree, res.extracted.links)
        if bad:
            rmtree_readonly(staging.root)
            raise ArchiveRejectedError(
                res.item.name, bad[0], "symlink resolves outside the version directory"
            )
