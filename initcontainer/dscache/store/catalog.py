"""What a cache volume holds: published versions, their records, and the refs pointing at them."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.paths import COMPLETE_RECORD, CONTROL_DIR, CachePaths
from dscache.store.records import CompleteRecord, RefScan, read_complete, scan_refs


@dataclass
class VersionInfo:
    """A published version with its record and the refs that use it."""

    record: CompleteRecord
    refs: list[str] = field(default_factory=list)

    @property
    def key(self) -> VersionKey:
        return self.record.key


@dataclass(frozen=True)
class Foreign:
    """A directory below the cache that is not one of its versions: a cache nested in this one at
    `root` (it has its own control dir, or holds version `key` at `root/<dt>/<src>/<ver>`), or else a
    version record of `key` found at `root`, where that version does not belong."""

    root: Path
    key: VersionKey | None = None
    nested: bool = True

    def note(self) -> str:
        """One line: what was ignored, and how to look at it."""
        if not self.nested:
            return f"ignored {self.root}: a record of version {self.key} where that version does not belong"
        what = "its own .dscache control dir" if self.key is None else f"version {self.key}, for one"
        return (
            f"ignored {self.root}: a cache nested in this one ({what}); "
            f"see dscache status --cache {shlex.quote(str(self.root))}"
        )


@dataclass
class CacheScan:
    """What `scan` found: this cache's published versions, what it ignored (`Foreign`), and the
    directories whose completion record is unreadable (`damaged`: a version dscache published whose
    record was truncated or overwritten since; not published, installed afresh by the next install)."""

    records: list[CompleteRecord] = field(default_factory=list)
    foreign: list[Foreign] = field(default_factory=list)
    damaged: list[Path] = field(default_factory=list)


def damaged_note(version_dir: Path) -> str:
    """Pure: one line naming a version dir whose completion record is unreadable, and the fix."""
    return (
        f"{version_dir / COMPLETE_RECORD}: unreadable completion record, so this version counts as not "
        "installed; run its install again to publish it afresh (dscache verify names the command; the "
        "damaged copy is moved to the trash, never modified)"
    )


def _foreign(where: Path, key: VersionKey) -> Foreign:
    """Pure: what a record of `key` at `where` (not `key`'s place in this cache) is: a nested cache's
    version if `where` ends in the version's own `<dt>/<src>/<ver>`, else a stray record."""
    parts = tuple(key.rel.split("/"))
    if where.parts[-len(parts) :] == parts:
        return Foreign(where.parents[len(parts) - 1], key)
    return Foreign(where, key, nested=False)


def scan(cache: CachePaths) -> CacheScan:
    """This cache's published versions: each `<dt>/<src...>/<ver>` dir holding a completion record of
    that very version. Never descends into a version (it stops at a record), into dot dirs, or into
    a cache nested in this one (a dir holding its own `.dscache` control dir); a record of a version
    found elsewhere (a nested cache's, copied without its control dir) is not this cache's either.
    Both are listed in `foreign`, not in `records`."""
    found = CacheScan()
    if not cache.root.is_dir():
        return found
    stack: list[str] = [str(cache.root)]
    while stack:
        here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False) or entry.name[:1] == ".":
                continue
            where = Path(entry.path)
            if os.path.exists(os.path.join(entry.path, COMPLETE_RECORD)):
                record = read_complete(where / COMPLETE_RECORD)
                if record is None:
                    found.damaged.append(where)
                    continue
                if where == cache.version_dir(record.key):
                    found.records.append(record)
                else:
                    found.foreign.append(_foreign(where, record.key))
            elif os.path.isdir(os.path.join(entry.path, CONTROL_DIR)):
                found.foreign.append(Foreign(where))
            else:
                stack.append(entry.path)
    found.records.sort(key=lambda r: r.key)
    found.damaged.sort()
    found.foreign = _merge_foreign(found.foreign)
    return found


def _merge_foreign(found: list[Foreign]) -> list[Foreign]:
    """Pure: one entry per root (the first key seen), sorted by path."""
    by_root: dict[Path, Foreign] = {}
    for item in found:
        by_root.setdefault(item.root, item)
    return [by_root[root] for root in sorted(by_root)]


def find_published(cache: CachePaths) -> list[CompleteRecord]:
    """This cache's published versions (`scan`), sorted by key."""
    return scan(cache).records


def catalog(
    cache: CachePaths, found: CacheScan | None = None, refs: RefScan | None = None
) -> list[VersionInfo]:
    """Published versions (of `found`, else of a new `scan`) with the names of the refs pointing at
    each: the readable refs of `refs`; without `refs`, of a new `scan_refs`, and RefError if a ref is
    unreadable (what it names is unknown)."""
    users: dict[VersionKey, list[str]] = {}
    readable = scan_refs(cache).check() if refs is None else refs.refs
    for ref in readable:
        for entry in ref.versions:
            users.setdefault(entry.key, []).append(ref.name)
    records = (found or scan(cache)).records
    return [VersionInfo(rec, sorted(users.get(rec.key, []))) for rec in records]
