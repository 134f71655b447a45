"""Copy one version from the cache volume to a private staging directory, fast.

The cache volume is usually NFS: per-file latency dominates small files, so several worker threads
copy at once (the copy syscalls release the GIL), biggest files first so the long transfers start early.
Each file is copied in the kernel (`copy_file_range`, else `sendfile`, else large reads) and created
read-only, like the cache: `r-x` for everyone if the version lists it executable, else `r--`.
"""

from __future__ import annotations

import errno
import os
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

from dscache.prepare.treewalk import TreeListing, TreeStats
from dscache.store.modes import file_mode
from dscache.store.paths import COMPLETE_RECORD, INVENTORY

COPY_WORKERS = 8
_CHUNK = 64 << 20  # progress is reported per chunk, so a huge file keeps the heartbeat going
_READ_CHUNK = 8 << 20
_NO_KERNEL_COPY = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF)


class _Method:
    """Which kernel copy still works here; downgraded once on the first refusal (benign races)."""

    use_copy_file_range = hasattr(os, "copy_file_range")
    use_sendfile = True


def _copy_fd(src: int, dst: int, progress: Callable[[int], None]) -> int:
    copied = 0
    if _Method.use_copy_file_range:
        try:
            while n := os.copy_file_range(src, dst, _CHUNK):
                copied += n
                progress(n)
            return copied
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY or copied:
                raise
            _Method.use_copy_file_range = False
    if _Method.use_sendfile:
        try:
            while n := os.sendfile(dst, src, copied, _CHUNK):
                copied += n
                progress(n)
            return copied
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY or copied:
                raise
            _Method.use_sendfile = False
    while data := os.read(src, _READ_CHUNK):
        view = memoryview(data)
        while view:
            view = view[os.write(dst, view) :]
        copied += len(data)
        progress(len(data))
    return copied


def _ignore(_: int) -> None:
    pass


def copy_file(
    src: Path | str, dst: Path | str, progress: Callable[[int], None] = _ignore, *, executable: bool = False
) -> int:
    """Copy one regular file to a new read-only (or read-and-execute) file, reporting bytes as they go;
    returns the total."""
    sfd = os.open(src, os.O_RDONLY)
    try:
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode(executable))
        try:
            return _copy_fd(sfd, dfd, progress)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def copy_version(
    src: Path,
    dst: Path,
    listing: TreeListing,
    *,
    heartbeat: Callable[[int], None],
    heartbeat_every: float,
    workers: int = COPY_WORKERS,
) -> TreeStats:
    """Copy the dataset of `src` into the existing empty dir `dst`, then its metadata files (record last).

    `heartbeat(bytes copied so far, plus one per file done)` is called every `heartbeat_every` seconds
    while bytes keep arriving. Returns what was
    actually copied, for the caller to compare with the completion record.
    """
    for rel in listing.dirs:
        os.mkdir(dst / rel)
    for rel, target in listing.links.items():
        os.symlink(target, dst / rel)
    queue = deque(sorted(listing.files, key=listing.files.__getitem__, reverse=True))
    src_root, dst_root = f"{src}/", f"{dst}/"
    slots = max(1, min(workers, len(queue)))
    copied, progress = [0] * slots, [0] * slots  # per worker, so no lock is needed
    errors: list[BaseException] = []

    def work(slot: int) -> None:
        def advance(n: int) -> None:
            progress[slot] += n

        try:
            while not errors:
                try:
                    rel = queue.popleft()
                except IndexError:
                    break
                runnable = rel in listing.executable
                copied[slot] += copy_file(src_root + rel, dst_root + rel, advance, executable=runnable)
                progress[slot] += 1  # empty files are progress too
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(slot,), daemon=True) for slot in range(slots)]
    for thread in threads:
        thread.start()
    reported = 0
    for thread in threads:
        while thread.is_alive():
            thread.join(heartbeat_every)
            if sum(progress) != reported:  # a hung copy stops the heartbeat, so others take over
                reported = sum(progress)
                heartbeat(reported)
    if errors:
        raise errors[0]
    for name in (INVENTORY, COMPLETE_RECORD):
        if (src / name).exists():
            copy_file(src / name, dst / name)
    return TreeStats(len(listing.files) + len(listing.links), sum(copied))
