"""Tree operations on the cache volume: delete read-only trees, merge staged trees, freeze published ones."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

FROZEN_DIR_MODE = 0o555


def regular_files(
    roots: Iterable[Path], skip: tuple[type[OSError], ...] = (OSError,)
) -> Iterator[tuple[str, os.stat_result]]:
    """(path, lstat) of every regular file below `roots`, symlinks not followed, in no set order; a
    directory or entry that raises one of `skip` (gone, unreadable) is passed over, others propagate."""
    stack = [os.fspath(root) for root in roots]
    while stack:
        here = stack.pop()
        try:
            with os.scandir(here) as it:
                entries = list(it)
        except skip:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except skip:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
            elif stat.S_ISREG(st.st_mode):
                yield entry.path, st


def rmtree_readonly(path: Path) -> None:
    """Delete a tree whose directories may be read-only (published versions are)."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    for dirpath, _dirs, _files in os.walk(path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(path)


def merge_into(src: Path, dst: Path) -> None:
    """Move everything below `src` into `dst` (created if missing); existing entries are replaced.

    Renames whole subtrees where `dst` lacks them, so the cost is in the overlap only: each entry is
    renamed first and inspected only when that fails, which saves the stats of a look-before-leap
    walk (thousands per version). Idempotent and resumable: after a crash, running it again finishes
    the move.
    """
    dst.mkdir(parents=True, exist_ok=True)
    _merge(os.fspath(src), os.fspath(dst))


def _merge(src: str, dst: str) -> None:
    with os.scandir(src) as it:
        entries = list(it)
    for entry in entries:
        target = f"{dst}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            try:
                os.rename(entry.path, target)  # also replaces an empty directory
            except OSError as err:
                if err.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    _merge(entry.path, target)
                    os.rmdir(entry.path)
                elif err.errno == errno.ENOTDIR:  # a file or symlink is in the way
                    os.unlink(target)
                    os.rename(entry.path, target)
                else:
                    raise
        else:
            try:
                os.replace(entry.path, target)
            except IsADirectoryError:
                rmtree_readonly(Path(target))
                os.replace(entry.path, target)


def freeze_dirs(root: Path, dirs: Iterable[str]) -> None:
    """Make the directories `dirs` (relative to `root`) read-only; files already are."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for rel in dirs:
            os.chmod(rel, FROZEN_DIR_MODE, dir_fd=fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> None:
    """Flush the filesystem holding `path` (syncfs(2)), not every filesystem of the node like sync(2):
    a published version's data must be on disk before the rename that publishes it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if ctypes.CDLL(None, use_errno=True).syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


class BackgroundFlush:
    """Flush the filesystem holding `path` from a background thread, whenever asked, one flush at a time.

    Why: a version's data must be on disk before it is published, and a single flush at the end
    stalls the publish for as long as the disk needs to write the whole version. Flushing while later
    archives still extract overlaps that I/O with the transfers, so the final, checked flush finds
    little left. The thread starts on the first request, after the worker processes were forked.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dscache-flush", daemon=True)
            self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._closing:
                return
            with contextlib.suppress(OSError):  # the final flush before publishing reports errors
                sync_filesystem(self._path)

    def close(self) -> None:
        self._closing = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> BackgroundFlush:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
