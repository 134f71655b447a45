"""Directories and markers on node-local scratch that pods of different users share.

An init container runs as its pod's user, so on a hostPath scratch (one per node) a copy made by a
pod of one uid must be usable by the next pod of another uid. Every directory prepare creates on
scratch outside a copy is world-writable with the sticky bit, like /tmp: any user may add entries,
only an entry's owner may rename or delete it. Last-use markers are world-writable files, so any pod
may refresh them. Copies themselves are world-readable and read-only (copytree: files 0444,
directories 0755). So no pod can remove or alter another user's copy: evicting one fails and that
version falls back to the cache volume, with a warning.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DIR_MODE = 0o1777
MARKER_MODE = 0o666


def make_shared_dirs(path: Path) -> None:
    """`mkdir -p path`, every directory it creates set to SHARED_DIR_MODE whatever the umask.

    Raises OSError (e.g. PermissionError on a directory this user may not write).
    """
    missing: list[Path] = []
    at = path
    while not at.is_dir():
        missing.append(at)
        at = at.parent
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            continue
        os.chmod(d, SHARED_DIR_MODE)


def create_marker(path: Path) -> None:
    """Create an empty marker file that every user may refresh (MARKER_MODE); no-op if it exists."""
    make_shared_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MARKER_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, MARKER_MODE)
    finally:
        os.close(fd)
