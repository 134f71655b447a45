"""The JSON records of the cache contract: completion records and refs.

Plain dataclasses and `json`, not pydantic: `dscache prepare` reads these in every training pod and its
start-up time is a product metric.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dscache.api.names import VersionKey
from dscache.store.atomic import write_json_atomic
from dscache.store.paths import COMPLETE_RECORD, CachePaths

RECORD_SCHEMA = 1


@dataclass
class ArchiveRecord:
    """One installed archive (archives layout) or remote file (files layout)."""

    size: int
    sha256: str | None = None


@dataclass
class CompleteRecord:
    """What was installed into a version: written last into the staging dir, before the rename."""

    data_type: str
    source: str
    version: str
    remote: str
    layout: str
    files: int
    bytes: int
    revision: str | None = None
    installed_at: str = ""
    dscache_version: str = ""
    archives: dict[str, ArchiveRecord] = field(default_factory=dict)
    schema: int = RECORD_SCHEMA

    @property
    def key(self) -> VersionKey:
        return VersionKey(self.data_type, self.source, self.version)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompleteRecord:
        archives = {k: ArchiveRecord(**v) for k, v in data.get("archives", {}).items()}
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "archives"}
        return cls(**known, archives=archives)

    def write(self, version_dir: Path) -> None:
        write_json_atomic(version_dir / COMPLETE_RECORD, self.to_json(), mode=0o444)


def read_complete(path: Path) -> CompleteRecord | None:
    """The completion record at `path` (a version dir or the record file), or None if absent/corrupt."""
    if path.is_dir():
        path = path / COMPLETE_RECORD
    try:
        with open(path, "rb") as fh:
            return CompleteRecord.from_json(json.loads(fh.read()))
    except (OSError, ValueError, TypeError):
        return None


def is_published(cache: CachePaths, key: VersionKey) -> bool:
    """A version is published iff its directory holds a completion record (renamed in whole). One
    stat: readers (`prepare`) then read the record and fail, naming it, when it is unreadable."""
    return cache.complete_record(key).is_file()


def is_installed(cache: CachePaths, key: VersionKey) -> bool:
    """Published with a readable completion record of that very version: what an install leaves
    alone. One whose record is unreadable is damaged (`catalog.scan`), and an install publishes it
    afresh (`install.commit.replace_published`)."""
    record = read_complete(cache.complete_record(key))
    return record is not None and record.key == key


@dataclass
class RefEntry:
    """One version a ref points at, with what a pod needs to expose it."""

    data_type: str
    source: str
    version: str
    link_strategy: str = "directory"
    env: str | None = None

    @property
    def key(self) -> VersionKey:
        return VersionKey(self.data_type, self.source, self.version)


@dataclass
class Ref:
    """`<cache>/.dscache/refs/<name>.json`: the version set a DatasetCache currently points at."""

    name: str
    versions: list[RefEntry]
    remote: str = ""
    updated_at: str = ""
    schema: int = RECORD_SCHEMA

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ref:
        entries = [RefEntry(**e) for e in data.get("versions", [])]
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "versions"}
        return cls(**known, versions=entries)

    def write(self, cache: CachePaths) -> None:
        write_json_atomic(cache.ref_path(self.name), self.to_json())


def read_ref(cache: CachePaths, name: str) -> Ref | None:
    """The ref called `name`, or None if it does not exist yet."""
    try:
        with open(cache.ref_path(name), "rb") as fh:
            return Ref.from_json(json.loads(fh.read()))
    except FileNotFoundError:
        return None


def list_refs(cache: CachePaths) -> list[Ref]:
    """All refs on the volume (unreadable ones are skipped: they are being replaced atomically)."""
    refs: list[Ref] = []
    if not cache.refs_dir.is_dir():
        return refs
    for path in sorted(cache.refs_dir.glob("*.json")):
        try:
            with open(path, "rb") as fh:
                refs.append(Ref.from_json(json.loads(fh.read())))
        except (OSError, ValueError, TypeError):
            continue
    return refs
