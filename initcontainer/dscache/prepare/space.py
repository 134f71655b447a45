"""Scratch space under `--scratch-max-bytes` when several prepares copy at once.

The copy lock (copyclaim.py) is per version, so two prepares copying different versions used to
decide "there is room" at the same time, each from the copies already on scratch, and together
overshoot the budget. The decision is therefore made under one scratch-wide `flock`
(`<scratch>/.dscache/locks/space`), and before the lock is released the copier reserves the bytes
it will write: `<scratch>/.dscache/reserved/<staging dir name>` holds the byte count. A reservation
counts while its staging dir is live (staging.py); its copier deletes it when the copy ends, and a
reservation whose staging dir is gone counts for nothing (its copy is on scratch, counted as a
copy, or abandoned).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from dscache.prepare import staging
from dscache.prepare.copyclaim import flock_file
from dscache.prepare.scratchpaths import ScratchPaths
from dscache.prepare.shared import make_shared_dirs

RESERVATION_MODE = 0o644


def _reserved_root(scratch: ScratchPaths) -> Path:
    return scratch.control / "reserved"


@contextlib.contextmanager
def space_claim(scratch: ScratchPaths, on_wait: Callable[[float], None], poll: float) -> Iterator[None]:
    """Hold the scratch-wide space lock for the `with` block (see copyclaim.copy_claim: `on_wait`,
    `poll`, OSError)."""
    with flock_file(scratch.control / "locks" / "space", on_wait, poll):
        yield


def reserve(scratch: ScratchPaths, stage: Path, nbytes: int) -> Path:
    """Reserve `nbytes` for the copy being made in `stage`; returns the reservation to `release`.
    Raises OSError."""
    root = _reserved_root(scratch)
    make_shared_dirs(root)
    path = root / stage.name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, RESERVATION_MODE)
    try:
        os.write(fd, str(nbytes).encode())
    finally:
        os.close(fd)
    return path


def release(reservation: Path) -> None:
    reservation.unlink(missing_ok=True)


def reserved_bytes(scratch: ScratchPaths) -> int:
    """Bytes reserved by copies in progress (live staging dirs); stale reservations are deleted
    (best effort: another user's stays until its owner's turn)."""
    try:
        entries = list(os.scandir(_reserved_root(scratch)))
    except FileNotFoundError:
        return 0
    live = staging.live_staging_names(scratch)
    total = 0
    for entry in entries:
        if entry.name not in live:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
            continue
        try:
            total += int(Path(entry.path).read_text())
        except (OSError, ValueError):
            continue
    return total
