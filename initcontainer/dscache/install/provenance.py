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

A version republished in place (`dscache publish --overwrite`) breaks that promise on the remote's
side: presence stays by key (no refetch), but for each present Archives version recorded from the
remote the install names, one small read of the remote's dscache manifest (`stated_archives`)
tells whether the archives it states (names, sizes, sha256) are the ones the version was installed
from; if not, one warning line names the version and the ways out (`republished_note`). That read
is best effort, with a quick retry policy (`QUICK`: one try, seconds of timeouts) and stops at the
first failure to reach the remote, so an offline install of present versions still succeeds, at
most `QUICK.deadline` later. `dscache ls-remote --cache` makes the same comparison.

Remotes are compared as locations: an `hf://` URL without its `@revision` (the record keeps the
revision the install resolved, the spec the branch it named), a `file://` path with its symlinks
resolved, any other URL as written, trailing `/` aside.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Callable, Iterable, Mapping

from dscache.api.names import VersionKey
from dscache.api.spec import DatasetCacheSpec
from dscache.errors import DscacheError
from dscache.layouts.manifest import ManifestError, read_dscache_manifest
from dscache.remotes.base import Remote, RemoteError
from dscache.remotes.retry import RetryPolicy
from dscache.store.paths import CachePaths
from dscache.store.records import CompleteRecord, read_complete, scan_refs

FILE_SCHEME = "file://"
log = logging.getLogger("dscache.install.provenance")
QUICK = RetryPolicy(attempts=1, deadline=15.0, connect_timeout=5.0, read_timeout=10.0)
"""The policy of the check of present versions against the remote: one try, short timeouts."""
Stated = Mapping[str, tuple[int | None, str | None]]
"""archive name -> (compressed size, lowercase sha256), each None where not stated."""


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


def stated_archives(remote: Remote, key: VersionKey) -> Stated | None:
    """The archives the remote's dscache manifest of `key` states, or None where it has none (or one
    that is not what publish writes: its line is logged as a warning). Raises RemoteError."""
    try:
        manifest = read_dscache_manifest(remote, key.rel)
    except ManifestError as err:
        log.warning("%s", err)
        return None
    if manifest is None:
        return None
    return {n: (a.size, a.sha256.lower() if a.sha256 else None) for n, a in manifest.archives.items()}


def differs_from_stated(record: CompleteRecord, stated: Stated) -> bool:
    """Pure: whether the installed version's `record` names other archives than `stated`, or one of
    another size or sha256 (compared where both say it)."""
    if set(record.archives) != set(stated):
        return True
    for name, installed in record.archives.items():
        size, sha256 = stated[name]
        if size is not None and installed.size != size:
            return True
        if sha256 is not None and installed.sha256 is not None and installed.sha256.lower() != sha256:
            return True
    return False


def checkable(record: CompleteRecord | None, key: VersionKey, remote: str) -> bool:
    """Pure but for `same_remote`: whether the present version's `record` can be compared with what
    `remote` states (an Archives version installed from it, its archives recorded)."""
    return (
        record is not None
        and record.key == key
        and record.layout.lower() == "archives"
        and bool(record.archives)
        and same_remote(record.remote, remote)
    )


def republished_note(key: VersionKey, remote: str, removal: str) -> str:
    """Pure: the warning for the present version `key` that `remote` now states other archives for."""
    return (
        f"{key} differs from the version {remote} now holds (republished there after this cache installed "
        f"it): kept as it is (a published version never changes); to get the remote's, remove it "
        f"({removal}) and install again, or have it published under a new version name"
    )


def republished_notes(
    cache: CachePaths, spec: DatasetCacheSpec, present: Iterable[VersionKey], opener: Callable[[], Remote]
) -> dict[VersionKey, str]:
    """The warning for each of the `present` versions of `spec` the remote (opened by `opener`, only
    if one is `checkable`) now states other archives for. Best effort: the first failure to open or
    read the remote ends the check, unsaid."""
    remote_url = spec.source.display_url()
    records = {k: read_complete(cache.complete_record(k)) for k in present}
    keys = [k for k, record in records.items() if checkable(record, k, remote_url)]
    if not keys or spec.layout.lower() != "archives":
        return {}
    notes: dict[VersionKey, str] = {}
    try:
        remote = opener()
    except (DscacheError, OSError) as err:
        log.debug("not comparing present versions with the remote: %s", err)
        return {}
    try:
        for key in keys:
            record = records[key]
            assert record is not None
            stated = stated_archives(remote, key)
            if stated is not None and differs_from_stated(record, stated):
                refs = sorted(r.name for r in scan_refs(cache).refs if any(e.key == key for e in r.versions))
                notes[key] = republished_note(key, remote_url, removal_command(cache, refs))
    except (RemoteError, OSError) as err:
        log.debug("stopped comparing present versions with the remote: %s", err)
    finally:
        close = getattr(remote, "close", None)
        if close is not None:
            close()
    return notes


def warn_republished(
    cache: CachePaths, spec: DatasetCacheSpec, present: Iterable[VersionKey], opener: Callable[[], Remote]
) -> None:
    """Log `republished_notes` as warnings, one per line."""
    for note in republished_notes(cache, spec, present, opener).values():
        log.warning("%s", note)
