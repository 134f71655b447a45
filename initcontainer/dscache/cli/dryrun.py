"""`dscache install --dry-run`: what an install would fetch (versions, items, bytes), writing nothing.

It reads the remote's metadata exactly as the installer plans (`install.plan_version`: same layout
code, same revision pinning) and the cache only through reads: which versions are published, which
items an interrupted install already finished in staging (`ingest.item_done`) and the bytes of the files
it began that a rerun resumes (`staging.best_partial`: partials of the very object the remote names
now; beside them, what the staging dir holds on disk as `dscache status` counts it, `store.staged`,
so the two numbers are told apart), which items a published version holds the bytes of
(`store.shares`: linked, not fetched), what the ref holds.
It says what the install would say of the versions it finds present, in the same words: a version
recorded from another remote or layout (`install.provenance`), a version that fails `verify` (the
repair hint), and why the install would fail (a ref naming clashing sources, a directory dscache did
not create at a version's path, too little space).
With `--repair` (`plan_dry_run(repair=...)`, the versions `install.damaged_versions` picks) it previews
the repair: per damaged version, the intact items the fresh copy would link from it (`share.intact`;
the real run also checks each reused file against its recorded digest, and fetches one that fails),
those shared with other versions, and the items and bytes it would fetch again.
It takes no lock and creates nothing, not even the cache directory: so its answer is a snapshot, and a
concurrent installer may change it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dscache.api.names import VersionKey
from dscache.api.sizes import format_size
from dscache.api.spec import DatasetCacheSpec
from dscache.cli import output
from dscache.cli.exits import EXIT_OK, exit_code
from dscache.install import digestlog
from dscache.install.ingest import fresh_pin, item_done
from dscache.install.pipeline import (
    EnvClashError,
    RefClashError,
    default_remote_factory,
    env_clash,
    plan_version,
    quick_opener,
    ref_clash,
    revision_per_version,
    target_ref,
    with_hf_revision,
)
from dscache.install.provenance import differences, republished_notes
from dscache.install.share import checkable, intact
from dscache.install.space import Need, Room, allocated, room, shortage, version_need
from dscache.install.staging import StagingPaths, best_partial
from dscache.layouts.plan import LayoutError
from dscache.remotes.base import Remote, RemoteError
from dscache.store.ownership import occupant_problem
from dscache.store.paths import CachePaths
from dscache.store.records import is_installed
from dscache.store.shares import ShareIndex, read_items
from dscache.store.staged import Tally, tally


@dataclass(frozen=True)
class VersionFetch:
    """One version of the spec: published already, or what installing it would transfer."""

    key: VersionKey
    published: bool
    revision: str | None = None
    items: int = 0
    bytes: int = 0
    items_staged: int = 0
    """Items an earlier, interrupted install finished (not fetched again)."""
    bytes_staged: int = 0
    """Bytes of those items, and of the partial files a rerun resumes (the part they hold)."""
    partial_files: int = 0
    """Files an interrupted install began: a rerun fetches only what they lack."""
    space_needed: int = 0
    """Bytes the version would still take on disk, in the file system's whole blocks (`install.space`)."""
    content_needed: int = 0
    """Of those, bytes of file content."""
    inodes_needed: int = 0
    items_shared: int = 0
    """Items a published version holds (linked, not fetched)."""
    bytes_shared: int = 0
    bytes_resumed: int = 0
    """Of `bytes_staged`, those in the partial files a rerun resumes."""
    in_staging: Tally = field(default_factory=Tally)
    """What the version's staging dir holds, on disk, as `dscache status` counts it (`store.staged`):
    it differs from `bytes_staged` (download bytes) by what a rerun does not reuse, and because an
    archive is counted there at its extracted size."""
    repair: bool = False
    """A published version `--repair` would publish afresh (it fails verify)."""
    items_reused: int = 0
    """A repair: intact items the fresh copy links from the damaged one (not fetched)."""
    bytes_reused: int = 0
    warnings: tuple[str, ...] = ()
    """What the install would warn about this present version, word for word."""

    @property
    def items_to_fetch(self) -> int:
        return self.items - self.items_staged - self.items_shared - self.items_reused

    @property
    def bytes_to_fetch(self) -> int:
        return self.bytes - self.bytes_staged - self.bytes_shared - self.bytes_reused


@dataclass(frozen=True)
class DryRun:
    remote: str
    ref: str
    ref_change: str  # "create", "update" or "none"
    versions: list[VersionFetch]
    room: Room | None  # the cache's file system (of its nearest existing parent)
    failures: list[str] = field(default_factory=list)
    """Why the install would fail before fetching, in its words (the space check is `room`'s)."""

    @property
    def free_bytes(self) -> int | None:
        return None if self.room is None else self.room.free

    def to_json(self) -> dict[str, Any]:
        missing = [v for v in self.versions if not v.published]
        return {
            "dryRun": True,
            "remote": self.remote,
            "ref": self.ref,
            "refChange": self.ref_change,
            "versions": [_version_json(v) for v in self.versions],
            "itemsToFetch": sum(v.items_to_fetch for v in missing),
            "bytesToFetch": sum(v.bytes_to_fetch for v in missing),
            "spaceNeeded": sum(v.space_needed for v in missing),
            "contentBytesNeeded": sum(v.content_needed for v in missing),
            "inodesNeeded": sum(v.inodes_needed for v in missing),
            "freeBytes": self.free_bytes,
            "freeInodes": None if self.room is None else self.room.inodes,
            "blockSize": None if self.room is None else self.room.block,
            "wouldFail": self.would_fail(),
        }

    def would_fail(self) -> list[str]:
        """Why the install would fail: `failures`, then too little space, if so."""
        problem = None if self.room is None else shortage(_total_need(self), self.room)
        return [*self.failures, *([] if problem is None else [problem])]


def _version_json(v: VersionFetch) -> dict[str, Any]:
    if v.published:
        return {
            "version": str(v.key),
            "state": "published",
            "itemsToFetch": 0,
            "bytesToFetch": 0,
            "warnings": list(v.warnings),
        }
    return {
        "version": str(v.key),
        "state": "repair" if v.repair else "missing",
        "revision": v.revision,
        "items": v.items,
        "bytes": v.bytes,
        "itemsStaged": v.items_staged,
        "bytesStaged": v.bytes_staged,
        "partialFiles": v.partial_files,
        "bytesInStaging": v.in_staging.bytes,
        "partialFilesInStaging": v.in_staging.partial,
        "itemsShared": v.items_shared,
        "bytesShared": v.bytes_shared,
        "itemsReused": v.items_reused,
        "bytesReused": v.bytes_reused,
        "itemsToFetch": v.items_to_fetch,
        "bytesToFetch": v.bytes_to_fetch,
        "warnings": list(v.warnings),
    }


def _close(remote: Remote) -> None:
    close = getattr(remote, "close", None)
    if close is not None:
        close()


def _fetch(
    cache: CachePaths,
    remote: Remote,
    spec: DatasetCacheSpec,
    key: VersionKey,
    revision: str | None,
    *,
    block: int,
    repair: Mapping[VersionKey, frozenset[str] | None],
) -> VersionFetch:
    """What installing `key` would transfer; with `key` in `repair` (its damaged paths), what
    repairing it would (`InstallRun._reuse`: its intact items are linked, not fetched)."""
    plan = plan_version(remote, spec, key)
    staging = StagingPaths(cache.staging_dir(key))
    logged = digestlog.load(staging.root)
    staged = [d for d in (item_done(staging, item, logged, rehash=False) for item in plan.items) if d]
    done_bytes = sum(r.size for r in staged)
    rest = [item for item in plan.items if item.name not in {r.item.name for r in staged}]
    reused = []
    if key in repair:
        held = {found.name: found for found in read_items(key, cache.version_dir(key))[1]}
        reused = [
            item
            for item in rest
            if (found := held.get(item.name)) is not None and intact(found, item, repair[key])
        ]
        rest = [item for item in rest if item not in reused]
    index = ShareIndex.load(cache, exclude=repair) if any(item.stated for item in rest) else ShareIndex()
    shared = [
        item
        for item in rest
        if any(checkable(found, item.kind) for found in index.candidates(plan.layout, item.stated, item.size))
    ]
    shared_bytes = sum(item.expected_bytes for item in shared)
    partial = [
        found[0]
        for found in (
            best_partial(staging, item, fresh_pin(item))
            for item in rest
            if item.kind == "file" and item not in shared
        )
        if found is not None
    ]
    linked = {item.name for item in shared} | {item.name for item in reused}
    need = version_need(plan, block, {r.item.name for r in staged} | linked)
    return VersionFetch(
        key,
        published=False,
        revision=revision,
        items=len(plan.items),
        bytes=plan.download_bytes,
        items_staged=len(staged),
        bytes_staged=done_bytes + sum(partial),
        partial_files=len(partial),
        bytes_resumed=sum(partial),
        space_needed=max(need.disk - sum(allocated(n, block) for n in partial), 0),
        content_needed=max(need.content - sum(partial), 0),
        inodes_needed=need.inodes,
        items_shared=len(shared),
        bytes_shared=shared_bytes,
        in_staging=tally(staging.root),
        repair=key in repair,
        items_reused=len(reused),
        bytes_reused=sum(item.expected_bytes for item in reused),
    )


def plan_dry_run(
    spec: DatasetCacheSpec,
    cache_root: Path,
    ref_name: str,
    merge: bool = False,
    repair: Mapping[VersionKey, frozenset[str] | None] | None = None,
) -> DryRun:
    """What `install(spec, cache_root, ref_name, merge=merge, repair=repair)` would do now. Raises
    RemoteError, LayoutError or RefError (merging into an unreadable ref)."""
    from dscache.cli.install import repair_hint

    cache = CachePaths(cache_root)
    keys = spec.version_keys()
    repair = {k: v for k, v in (repair or {}).items() if k in keys}
    missing = [k for k in keys if k in repair or not is_installed(cache, k)]
    fetched: dict[VersionKey, VersionFetch] = {}
    space = room(cache_root)
    block = 4096 if space is None else space.block
    if missing and revision_per_version(spec):
        for key in missing:
            remote = default_remote_factory(with_hf_revision(spec, key.version))
            try:
                fetched[key] = _fetch(
                    cache, remote, spec, key, remote.resolve_revision(), block=block, repair=repair
                )
            finally:
                _close(remote)
    elif missing:
        remote = default_remote_factory(spec)
        try:
            revision = remote.resolve_revision()
            for key in missing:
                fetched[key] = _fetch(cache, remote, spec, key, revision, block=block, repair=repair)
        finally:
            _close(remote)
    old, new = target_ref(cache, spec, ref_name, merge)
    clash = ref_clash(new)
    same_env = env_clash(new) if clash is None else None
    if same_env is not None:  # refused as the install refuses it; a ref clash is a failure it predicts
        raise EnvClashError(same_env)
    change = (
        "create"
        if old is None
        else "none"
        if (old.versions, old.remote) == (new.versions, new.remote)
        else "update"
    )
    present = [k for k in keys if k not in fetched]
    republished = republished_notes(cache, spec, present, quick_opener(spec, default_remote_factory))
    versions = [
        fetched.get(k)
        or VersionFetch(
            k,
            published=True,
            warnings=(
                *differences(cache, spec, [k]),
                *filter(None, [republished.get(k), repair_hint(k, cache_root)]),
            ),
        )
        for k in keys
    ]
    failures = [clash] if clash is not None else []
    failures += [p for p in (occupant_problem(cache, k) for k in missing) if p is not None]
    return DryRun(spec.source.display_url(), ref_name, change, versions, space, failures)


def render_text(result: DryRun) -> list[str]:
    """The human report: one line per version (and the warnings the install would give), then the
    totals."""
    lines = [f"dry run (nothing written): {result.remote}"]
    for v in result.versions:
        if v.published:
            lines.append(f"  {v.key}: published, nothing to fetch")
            lines += [f"    the install would warn: {w}" for w in v.warnings]
            continue
        kept = [f"{v.items_staged} item(s) finished"] if v.items_staged else []
        kept += [f"{v.partial_files} partial file(s) to resume"] if v.partial_files else []
        staged = f" ({format_size(v.bytes_staged)} already in staging: {', '.join(kept)})" if kept else ""
        staged += _not_reused(v)
        if v.items_reused:
            staged += (
                f" ({v.items_reused} intact item(s), {format_size(v.bytes_reused)}, linked from the "
                "damaged copy)"
            )
        if v.items_shared:
            staged += f" ({v.items_shared} item(s) linked from published versions)"
        revision = f" at {v.revision}" if v.revision else ""
        action = "repair: " if v.repair else ""
        lines.append(
            f"  {v.key}{revision}: {action}{v.items_to_fetch} of {v.items} item(s), "
            f"{format_size(v.bytes_to_fetch)} to fetch{staged}"
        )
    summary = result.to_json()
    space = result.room
    free = "" if space is None else f", {format_size(space.free)} free"
    if space is not None and space.inodes is not None:
        free += f" and {space.inodes} inodes"
    disk, content = format_size(summary["spaceNeeded"]), format_size(summary["contentBytesNeeded"])
    lines.append(
        f"would fetch {summary['itemsToFetch']} item(s), {format_size(summary['bytesToFetch'])}; "
        f"needs about {disk} on disk ({content} of content, {summary['inodesNeeded']} files and "
        f"directories){free}"
    )
    lines += [f"the install would fail: {problem}" for problem in result.would_fail()]
    lines.append(
        f"ref {result.ref}: "
        + {"create": "would be created", "update": "would be updated"}.get(result.ref_change, "unchanged")
    )
    return lines


def _total_need(result: DryRun) -> Need:
    """Pure: what the missing versions of `result` still take."""
    missing = [v for v in result.versions if not v.published]
    return Need(
        sum(v.space_needed for v in missing),
        sum(v.content_needed for v in missing),
        sum(v.inodes_needed for v in missing),
    )


def _not_reused(v: VersionFetch) -> str:
    """Pure: what staging holds (file content) beside what a rerun reuses, and why it is more (`dscache
    status` shows the on-disk number); "" when staging holds nothing a rerun leaves unused."""
    t = v.in_staging
    unused = t.leftover_bytes + max(t.resumable_bytes - v.bytes_resumed, 0)
    if not t.bytes or not unused:
        return ""
    partials = t.partial - v.partial_files
    what = [f"{partials} partial file(s) without a resume record or of another object"] if partials else []
    beyond = t.resumable_bytes - v.bytes_resumed
    if beyond > 0 and t.resumable == v.partial_files:  # every file with a record is resumed
        what.append(f"{format_size(beyond)} of the files it resumes past their parts recorded as finished")
    elif beyond > 0:
        what.append(f"{format_size(beyond)} of the files with a resume record past what the rerun resumes")
    what += (
        ["unfinished archive extractions"] if t.leftover_bytes > t.partial_bytes - t.resumable_bytes else []
    )
    return (
        f" ({format_size(t.bytes)} of file content in staging, as `dscache status` counts it, archives at "
        f"their extracted size: {format_size(unused)} of it is not reused: {', '.join(what) or 'stale data'})"
    )


def run_dry(
    spec: DatasetCacheSpec,
    cache_root: Path,
    ref_name: str,
    *,
    as_json: bool,
    merge: bool = False,
    repair: Mapping[VersionKey, frozenset[str] | None] | None = None,
) -> int:
    """The `--dry-run` command: print the plan (one JSON document with --json); exit code."""
    try:
        result = plan_dry_run(spec, cache_root, ref_name, merge, repair)
    except (RemoteError, LayoutError, RefClashError, EnvClashError) as err:
        return output.error(str(err), exit_code(err))
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print("\n".join(render_text(result)))
    return EXIT_OK
