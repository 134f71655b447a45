"""Last use of scratch copies: the mtime of one empty marker file per version.

Touching it is a single `utime` on the warm path; the eviction and status paths, which are rare, list
the markers instead of walking the copies.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from dscache.api.names import NameError_, VersionKey
from dscache.prepare.scratchpaths import ScratchPaths, key_from_marker
from dscache.prepare.shared import create_marker


@dataclass(frozen=True)
class Use:
    """A version that has been on scratch, and when it was last prepared (epoch s; a marker dated in
    the future counts as now, and `future` says so)."""

    key: VersionKey
    last_used: float
    future: bool = False


def touch(marker: Path) -> None:
    """Mark a version as used now (creates the marker on first use)."""
    try:
        os.utime(marker)
    except FileNotFoundError:
        create_marker(marker)  # shared by every user of the scratch (shared.py)


def list_uses(scratch: ScratchPaths, now: float | None = None, *, fix_future: bool = False) -> list[Use]:
    """Every marker on scratch (foreign files in the marker tree are ignored). A marker dated after
    `now` (default: the clock) is clamped to `now`: a clock skew or a hand-set mtime must not protect
    a copy from eviction until then; `fix_future` also sets such a marker to `now` (best effort), so
    it ages from now on instead of counting as "now" at every look."""
    at = time.time() if now is None else now
    uses: list[Use] = []
    root = scratch.used_root
    if not root.is_dir():
        return uses
    for dt in os.scandir(root):
        for src in os.scandir(dt.path) if dt.is_dir() else ():
            for ver in os.scandir(src.path) if src.is_dir() else ():
                try:
                    key = key_from_marker((dt.name, src.name, ver.name))
                    mtime = ver.stat().st_mtime
                    if mtime > at and fix_future:
                        with contextlib.suppress(OSError):
                            os.utime(ver.path, (at, at))
                    uses.append(Use(key, min(mtime, at), future=mtime > at))
                except (NameError_, FileNotFoundError):
                    continue
    return uses


def forget(scratch: ScratchPaths, key: VersionKey) -> None:
    """Drop the marker of an evicted version."""
    scratch.used_marker(key).unlink(missing_ok=True)
