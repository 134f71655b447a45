"""The JSON records of the cache contract: completion records and refs.

Plain dataclasses and `json`, not pydantic: `dscache prepare` reads these in every training pod and its
start-up time is a product metric.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dscache.api.names import VersionKey, is_safe_segment
from dscache.errors import DscacheError
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
    origin: str = ""
    """How it was written, for the commands hints suggest: "file" (`install -f`: it names exactly a
    manifest's versions), "flags" (`install --source --version`, only ever merged into by flags), ""
    (both, or written by an older dscache)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ref:
        entries = [RefEntry(**e) for e in data.get("versions", [])]
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "versions"}
        return cls(**known, versions=entries)

    def write(self, cache: CachePaths) -> None:
        write_json_atomic(cache.ref_path(self.name), self.to_json())


DIRECTORY = "a directory, not a file"


class RefError(DscacheError):
    """A ref file that cannot be read or is not a ref: bad JSON, wrong shape, no permission, a dir.

    gc and release refuse while one exists (what it names is unknown, so removing anything could
    remove what it names); `status` lists it; `prepare` fails naming it.
    """

    def __init__(self, path: Path, reason: str) -> None:
        name = ref_name_of(path)
        if reason == DIRECTORY:
            how = "delete it (dscache never makes a directory there)"
        elif not is_safe_segment(name):  # a name `release --ref` refuses: no command to offer
            how = "fix or delete it (dscache never writes a ref of that name)"
        else:  # a safe name needs no shell quoting; the file is `<cache>/.dscache/refs/<name>.json`
            release = f"dscache release --cache {shlex.quote(str(path.parents[2]))} --ref {name}"
            how = f"fix or delete it ({release} drops it and removes nothing)"
        super().__init__(f"{path}: unreadable ref ({reason}); {how}")
        self.path = path
        self.reason = reason


def ref_name_of(path: Path) -> str:
    """Pure: the ref name of the file `<refs>/<name>.json`."""
    return path.name.removesuffix(".json")


def _load_ref(path: Path) -> Ref:
    """The ref in file `path`; raises FileNotFoundError if it is absent, RefError if unreadable."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise RefError(path, DIRECTORY) from None
    except OSError as err:
        raise RefError(path, err.strerror or type(err).__name__) from None
    except ValueError as err:  # JSON syntax, or bytes that are not UTF-8
        raise RefError(path, f"not JSON: {err}") from None
    try:
        if not isinstance(data.get("versions"), list):
            raise TypeError("versions")
        ref = Ref.from_json(data)
    except (AttributeError, TypeError, ValueError):
        raise RefError(path, "not a ref: expected an object with a list of versions") from None
    if not isinstance(ref.name, str) or not all(
        isinstance(v, str) for e in ref.versions for v in (e.data_type, e.source, e.version)
    ):
        raise RefError(path, "not a ref: name, data_type, source and version must be strings")
    return ref


def read_ref(cache: CachePaths, name: str) -> Ref | None:
    """The ref called `name`, or None if it does not exist yet; raises RefError if it is unreadable."""
    try:
        return _load_ref(cache.ref_path(name))
    except FileNotFoundError:
        return None


@dataclass
class RefScan:
    """What `scan_refs` found: the readable refs, and the unreadable ones (`RefError`s)."""

    refs: list[Ref] = field(default_factory=list)
    unreadable: list[RefError] = field(default_factory=list)

    def check(self) -> list[Ref]:
        """The refs; raises the first RefError if any ref is unreadable (gc and release refuse)."""
        if self.unreadable:
            raise self.unreadable[0]
        return self.refs


def scan_refs(cache: CachePaths) -> RefScan:
    """All refs on the volume, sorted by file name. Refs are replaced by rename (`write_json_atomic`),
    so a reader never sees half a ref: one that does not parse is broken, not in flight."""
    found = RefScan()
    if not cache.refs_dir.is_dir():
        return found
    for path in sorted(cache.refs_dir.glob("*.json")):
        try:
            found.refs.append(_load_ref(path))
        except FileNotFoundError:  # released between listing and reading
            continue
        except RefError as err:
            found.unreadable.append(err)
    return found


def list_refs(cache: CachePaths) -> list[Ref]:
    """All refs on the volume; raises RefError if one is unreadable (`scan_refs` lists those)."""
    return scan_refs(cache).check()
