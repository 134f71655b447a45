"""`dscache status --scratch DIR`: what a node's scratch holds, how big, when last used, and whether
each copy still passes the consistency check (the same one `prepare` applies).

Only copies on scratch are listed: a version prepared here but never copied (too big for the
budget, scratch full) has a last-use marker and no copy, and is not there to report. Each copy's
`heldBy` lists the links directories that keep it from eviction (holds.py: `NODE:LINKS`; another
pod's for the `--scratch-hold-max` its prepare recorded) and `unreadable PATH` for each hold record
that cannot be read (it holds every copy; a warning line on stderr names it and what to do). A
last-use marker dated in the future counts as now, as for `prepare`, with a warning. `--json`:
`{"scratch", "copies": [{"version", "state", "files", "bytes", "lastUsed", "lastUsedInFuture",
"heldBy"}], "staging": [{"name", "ageSeconds"}]}`, `lastUsed` in ISO 8601 UTC.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dscache.api.sizes import format_size
from dscache.prepare.consistency import is_consistent
from dscache.prepare.holds import holders
from dscache.prepare.lastuse import list_uses
from dscache.prepare.scratchpaths import ScratchPaths
from dscache.store.records import read_complete


@dataclass(frozen=True)
class CopyStatus:
    """One copy on scratch. state: ok | damaged (no readable record, or fails the check)."""

    version: str
    state: str
    files: int
    bytes: int
    last_used: str
    held_by: tuple[str, ...] = ()
    future: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "state": self.state,
            "files": self.files,
            "bytes": self.bytes,
            "lastUsed": self.last_used,
            "lastUsedInFuture": self.future,
            "heldBy": list(self.held_by),
        }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def copy_statuses(scratch: ScratchPaths, warn: Callable[[str], None]) -> list[CopyStatus]:
    """Every copy on scratch, most recently used first; `warn` gets one line per unreadable hold
    record and per last-use marker dated in the future."""
    now = time.time()
    held = holders(scratch, now=now)
    for warning in held.warnings:
        warn(warning)
    statuses: list[CopyStatus] = []
    for use in sorted(list_uses(scratch, now=now), key=lambda u: u.last_used, reverse=True):
        path = scratch.version_dir(use.key)
        record = read_complete(path)
        by = tuple(held.of(use.key))
        if record is None and not path.exists():
            continue
        if use.future:
            warn(
                f"{use.key}: its last-use marker {scratch.used_marker(use.key)} is dated in the future; "
                "counted as used now"
            )
        if record is None:
            statuses.append(CopyStatus(str(use.key), "damaged", 0, 0, _iso(use.last_used), by, use.future))
            continue
        state = "ok" if is_consistent(path, record) else "damaged"
        statuses.append(
            CopyStatus(str(use.key), state, record.files, record.bytes, _iso(use.last_used), by, use.future)
        )
    return statuses


def _warn(line: str) -> None:
    print(f"dscache status: warning: {line}", file=sys.stderr)


def _staging(scratch: ScratchPaths) -> list[dict[str, object]]:
    try:
        entries = list(os.scandir(scratch.staging_root))
    except FileNotFoundError:
        return []
    now = time.time()
    return [{"name": e.name, "ageSeconds": round(now - e.stat().st_mtime, 1)} for e in entries]


def run_scratch_status(scratch: Path, as_json: bool) -> int:
    """Print the status of `scratch`; 1 if it is not a directory."""
    if not scratch.is_dir():
        print(f"dscache status: {scratch} is not a directory", file=sys.stderr)
        return 1
    paths = ScratchPaths(scratch.absolute())
    copies = copy_statuses(paths, _warn)
    staging = _staging(paths)
    if as_json:
        report = {"scratch": str(paths.root), "copies": [c.to_json() for c in copies], "staging": staging}
        print(json.dumps(report))
        return 0
    width = max([len("VERSION"), *(len(c.version) for c in copies)])
    print(f"{'VERSION':<{width}}  {'STATE':<8}{'FILES':>9}  {'SIZE':>11}  {'LAST USED (UTC)':<20}  HELD BY")
    for c in copies:
        held = ", ".join(c.held_by) or "-"
        size = format_size(c.bytes)
        print(f"{c.version:<{width}}  {c.state:<8}{c.files:>9}  {size:>11}  {c.last_used:<20}  {held}")
    total = sum(c.bytes for c in copies if c.state == "ok")
    print(f"{len(copies)} version(s), {format_size(total)} in good copies, {len(staging)} copies in progress")
    return 0
