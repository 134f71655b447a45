"""Swap two paths atomically: Linux's `renameat2(RENAME_EXCHANGE)`, called through ctypes.

Python's os module has no binding for it (3.12), and no library on the init container's import list
offers one; the call is one libc function. Used to replace a stale scratch copy with a fresh one
while pods read it: a rename-away-then-rename-in leaves the path missing in between (readers get
ENOENT), an exchange never does.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

AT_FDCWD = -100
RENAME_EXCHANGE = 2
_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap what `a` and `b` name (both must exist, on one file system).

    Returns False where the system cannot (not Linux, a libc without renameat2, a file system
    without RENAME_EXCHANGE): nothing was changed. Raises OSError for any other failure.
    """
    if sys.platform != "linux":
        return False
    import ctypes  # only on this rare path: start-up cost

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    rc = renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(b))
