"""Replace whatever is at a path by something else with no moment where the path is missing.

A symlink over a symlink is a plain `rename`. A directory over a directory (or over a symlink, or
the reverse) needs Linux `renameat2(RENAME_EXCHANGE)`; where the filesystem refuses it, the old
entry is renamed away first (a brief gap) rather than failing.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False if this kernel or filesystem cannot."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def replace(new: Path, old: Path) -> Path | None:
    """Put `new` at `old`; returns the path now holding the previous entry (to delete), if any."""
    try:
        os.replace(new, old)
        return None
    except OSError as exc:
        if exc.errno not in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST):
            raise
    if exchange(new, old):
        return new
    aside = old.with_name(f"{new.name}.old")
    os.rename(old, aside)
    os.rename(new, old)
    return aside
