"""Private staging dirs and the trash on scratch: creation, liveness, and cleanup after dead processes.

A staging dir is named `<tag>.<host>.<pid>.<token>`, where `<tag>` identifies the version being copied,
and its mtime is a heartbeat the copier refreshes while it makes progress. It is abandoned when its
process is known dead (`<host>` is this process's identity, `store.liveness.host_name()`, and the pid
is gone or is ours: `liveness.process_gone`) or when its heartbeat is older than `STALE_AFTER` (another
pod, pid namespace or node: pids are not comparable there). A live staging dir for a version
tells other processes that a copy is on its way, so they wait for it instead of reading the cache
volume again.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.prepare.scratchpaths import ScratchPaths
from dscache.prepare.shared import make_shared_dirs
from dscache.store.deletion import delete_tree
from dscache.store.liveness import host_name, process_gone

HEARTBEAT_EVERY = 5.0
STALE_AFTER = 60.0


@dataclass(frozen=True)
class Owner:
    """Who a staging dir belongs to, from its name."""

    tag: str
    host: str
    pid: int


def version_tag(key: VersionKey) -> str:
    """A short, dot-free name for a version (names may be long and contain '/')."""
    import hashlib

    return hashlib.sha256(key.rel.encode()).hexdigest()[:16]


def new_staging(scratch: ScratchPaths, key: VersionKey) -> Path:
    """Create an empty staging dir owned by this process for copying `key`."""
    make_shared_dirs(scratch.staging_root)
    path = scratch.staging_root / f"{version_tag(key)}.{host_name()}.{os.getpid()}.{os.urandom(6).hex()}"
    path.mkdir()
    return path


def parse_owner(name: str) -> Owner | None:
    """The owner encoded in a staging dir name (hosts may contain dots), or None if it is not ours."""
    tag, _, rest = name.partition(".")
    host, _, pid = rest.rpartition(".")[0].rpartition(".")
    try:
        return Owner(tag, host, int(pid)) if tag and host else None
    except ValueError:
        return None


def is_abandoned(owner: Owner | None, heartbeat: float, *, now: float, gone: bool) -> bool:
    """Pure: whether a staging dir is abandoned: not one of ours (`owner` None), its heartbeat (mtime,
    epoch s) older than `STALE_AFTER`, or its owner `gone` (`liveness.process_gone`)."""
    return owner is None or now - heartbeat > STALE_AFTER or gone


def _staging_entries(scratch: ScratchPaths) -> list[tuple[os.DirEntry[str], Owner | None, bool]]:
    """Each staging dir with its owner and whether it is abandoned."""
    try:
        entries = list(os.scandir(scratch.staging_root))
    except FileNotFoundError:
        return []
    now = time.time()
    judged = []
    for entry in entries:
        try:
            heartbeat = entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        owner = parse_owner(entry.name)
        gone = owner is not None and process_gone(owner.host, owner.pid, own_pid_too=True)
        abandoned = is_abandoned(owner, heartbeat, now=now, gone=gone)
        judged.append((entry, owner, abandoned))
    return judged


def copy_in_progress(scratch: ScratchPaths, key: VersionKey) -> bool:
    """Whether another live process is copying `key` right now."""
    tag = version_tag(key)
    return any(
        owner is not None and owner.tag == tag and not gone for _, owner, gone in _staging_entries(scratch)
    )


def live_staging_names(scratch: ScratchPaths) -> set[str]:
    """Names of the staging dirs whose copiers are alive."""
    return {entry.name for entry, _, gone in _staging_entries(scratch) if not gone}


def clean_abandoned(scratch: ScratchPaths) -> None:
    """Delete staging dirs of dead processes and anything left in the trash."""
    for entry, _, abandoned in _staging_entries(scratch):
        if abandoned:
            _delete(Path(entry.path), scratch)
    try:
        trash = list(os.scandir(scratch.trash_dir))
    except FileNotFoundError:
        return
    for entry in trash:
        _delete(Path(entry.path), scratch)


def _delete(path: Path, scratch: ScratchPaths) -> None:
    """Delete what can go; a busy entry is left for a later run, with a warning."""
    leftover = delete_tree(path)
    if leftover is not None:
        print(f"dscache prepare: warning: scratch {leftover.describe(scratch.root)}", file=sys.stderr)


def discard(path: Path, scratch: ScratchPaths) -> None:
    """Remove a tree so that nobody sees it half deleted: rename into the trash, then delete."""
    make_shared_dirs(scratch.trash_dir)
    trash = scratch.trash_dir / os.urandom(8).hex()
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    _delete(trash, scratch)
