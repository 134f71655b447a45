"""Where the versions an install finds present came from, against where it asks for them.

A published version is immutable and identified by its key (`DT/SRC=VER`): an install that finds it
present leaves it as it is, whatever remote or layout it names, and does no network I/O for it
(fetching it again to compare would cost a download per run, and replacing it silently would change
what running pods read). Presence is therefore right, but a version recorded from another remote or
layout than the install names is said: one warning line per version naming both (`differences`),
logged once per installing process by `warn_differences`, whether it installs alone or as one worker
of a team (`install --workers K`: each worker's log says it, once).

A ref's `remote` says where the versions it names came from: the remote of each published version's
completion record (the install's own for a version it is about to fetch), so an install that finds
its versions present never records a remote they did not come from; a ref naming versions of several
remotes (`--source` installs merge into the ref) lists them, sorted, separated by `, ` (`ref_remote`).

Remotes are compared as locations: an `hf://` URL without its `@revision` (the record keeps the
revision the install resolved, the spec the branch it named), a `file://` path with its symlinks
resolved, any other URL as written, trailing `/` aside.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Iterable

from dscache.api.names import VersionKey
from dscache.api.spec import DatasetCacheSpec
from dscache.store.paths import CachePaths
from dscache.store.records import CompleteRecord, read_complete, scan_refs

FILE_SCHEME = "file://"
log = logging.getLogger("dscache.install.provenance")


def _location(url: str) -> str:
    """Pure but for resolving a `file://` path's symlinks: what identifies a remote's place."""
    url = url.rstrip("/")
    if url.startswith("hf://"):
        return url.rpartition("@")[0] or url
    if url.startswith(FILE_SCHEME):
        return FILE_SCHEME + os.path.realpath(url[len(FILE_SCHEME) :])
    return url


def same_remote(recorded: str, asked: str) -> bool:
    """Whether a version recorded from `recorded` comes from the remote `asked` names."""
    return _location(recorded) == _location(asked)


def differs(record: CompleteRecord, remote: str, layout: str) -> bool:
    """Pure but for `same_remote`: whether an install naming `remote` and `layout` names another
    origin than the version's `record`."""
    return not same_remote(record.remote, remote) or record.layout.lower() != layout.lower()


def difference(key: VersionKey, record: CompleteRecord, remote: str, layout: str, removal: str) -> str:
    """Pure: the warning for the present version `key` (its `record`) that an install names with
    another `remote` or `layout` (`differs`), ending with `removal` (`removal_command`)."""
    return (
        f"{key} is already present, installed from {record.remote} (layout {record.layout}), not from "
        f"{remote} (layout {layout.lower()}) as this install names it: kept as it is (a published version "
        f"never changes); to install it from {remote}, remove it first ({removal})"
    )


def removal_command(cache: CachePaths, refs: list[str]) -> str:
    """Pure: the commands that remove a version the refs named `refs` point at: their release (the
    last one removes it, with the versions no other ref names), or without refs a gc."""
    where = shlex.quote(str(cache.root))
    if not refs:
        return f"dscache gc --cache {where} --keep 0 removes it and every other version no ref names"
    if len(refs) == 1:
        return (
            f"dscache release --cache {where} --ref {refs[0]} removes it and the versions only that ref names"
        )
    return (
        f"dscache release --cache {where} --ref R for each ref naming it, R in {', '.join(refs)}: the "
        "last one removes it and the versions no other ref names"
    )


def differences(cache: CachePaths, spec: DatasetCacheSpec, present: Iterable[VersionKey]) -> list[str]:
    """The warnings for the `present` versions of `spec` recorded from another remote or layout."""
    remote = spec.source.display_url()
    found = []
    for key in present:
        record = read_complete(cache.complete_record(key))
        if record is not None and differs(record, remote, spec.layout):
            refs = sorted(r.name for r in scan_refs(cache).refs if any(e.key == key for e in r.versions))
            found.append(difference(key, record, remote, spec.layout, removal_command(cache, refs)))
    return found


def warn_differences(cache: CachePaths, spec: DatasetCacheSpec, present: Iterable[VersionKey]) -> None:
    """Log `differences` as warnings, one per line."""
    for note in differences(cache, spec, present):
        log.warning("%s", note)


def ref_remote(cache: CachePaths, keys: Iterable[VersionKey], asked: str) -> str:
    """Where the versions `keys` of a ref come from: their records' remotes (`asked` for a version
    not published, or whose record is unreadable), sorted and joined by `, `."""
    remotes = set()
    for key in keys:
        record = read_complete(cache.complete_record(key))
        remotes.add(asked if record is None or record.key != key else record.remote)
    return ", ".join(sorted(remotes)) or asked
