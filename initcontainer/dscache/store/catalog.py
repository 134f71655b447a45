"""What a cache volume holds: published versions, their records, and the refs pointing at them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.paths import COMPLETE_RECORD, CONTROL_DIR, CachePaths
from dscache.store.records import CompleteRecord, list_refs, read_complete


@dataclass
class VersionInfo:
    """A published version with its record and the refs that use it."""

    record: CompleteRecord
    refs: list[str] = field(default_factory=list)

    @property
    def key(self) -> VersionKey:
        return self.record.key


def find_published(cache: CachePaths) -> list[CompleteRecord]:
    """Every published version: a `<dt>/<src...>/<ver>` dir holding a completion record.

    Walks at most the name depth of sources and never descends into a version (it stops at a record).
    """
    records: list[CompleteRecord] = []
    if not cache.root.is_dir():
        return records
    stack: list[str] = [str(cache.root)]
    while stack:
        here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False) or entry.name == CONTROL_DIR:
                continue
            if os.path.exists(os.path.join(entry.path, COMPLETE_RECORD)):
                record = read_complete(Path(entry.path, COMPLETE_RECORD))
                if record is not None:
                    records.append(record)
            elif entry.name[:1] != ".":
                stack.append(entry.path)
    return sorted(records, key=lambda r: r.key)


def catalog(cache: CachePaths) -> list[VersionInfo]:
    """Published versions with the names of the refs pointing at each."""
    users: dict[VersionKey, list[str]] = {}
    for ref in list_refs(cache):
        for entry in ref.versions:
            users.setdefault(entry.key, []).append(ref.name)
    return [VersionInfo(rec, sorted(users.get(rec.key, []))) for rec in find_published(cache)]
