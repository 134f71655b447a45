"""One scratch copy per version and node: an advisory lock (`flock`) the copier holds while copying.

Why a lock where the rest of prepare is lock-free: "is a live process copying this version?" (a
look for its staging dir) and creating one's own staging dir are two steps, so pods that start
together (a Job's pods on one node) pass the look together and each read the whole version from the
shared volume, one copy kept and the others dropped. An `flock` is taken atomically, is released by
the kernel when its holder exits or dies (no stale claim to judge, unlike a marker file), and holds
between the containers of one node (one kernel, one file on the node's scratch). Pods that find a
complete copy never take it; a waiter that gets the lock looks for the copy again before copying.

The lock files live in `<scratch>/.dscache/locks/<version tag>` (staging.version_tag), one empty
read-only file per version ever copied, created by whichever user's pod comes first and opened
read-only by everyone (flock needs no write access). They are never deleted: deleting a lock file a
process holds would let the next one lock a new file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.prepare.scratchpaths import ScratchPaths
from dscache.prepare.shared import make_shared_dirs
from dscache.prepare.staging import version_tag

LOCK_MODE = 0o444


@contextlib.contextmanager
def flock_file(path: Path, on_wait: Callable[[float], None], poll: float) -> Iterator[None]:
    """Hold an exclusive `flock` on the file `path` (created read-only if missing, its directory
    shared) for the `with` block; while another process holds it, `on_wait(seconds waited so far)`
    is called every `poll` seconds. Raises OSError when the file cannot be created or opened."""
    make_shared_dirs(path.parent)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, LOCK_MODE)
    try:
        begin = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            on_wait(time.monotonic() - begin)
            time.sleep(poll)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def copy_claim(
    scratch: ScratchPaths, key: VersionKey, on_wait: Callable[[float], None], poll: float
) -> Iterator[None]:
    """Hold the copy lock of `key` on `scratch` for the `with` block.

    While another process holds it, `on_wait(seconds waited so far)` is called every `poll` seconds.
    Raises OSError when the lock file cannot be created or opened (the caller falls back to the cache
    volume, as for any scratch trouble).
    """
    with flock_file(scratch.control / "locks" / version_tag(key), on_wait, poll):
        yield
