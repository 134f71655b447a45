"""What a file's type is called in messages: one spelling for every command and remote.

Standard library only (`prepare` checks its paths with it).
"""

from __future__ import annotations

import stat

_NAMES = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symlink"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_type(mode: int) -> str:
    """Pure: the file type of `mode` (an `st_mode`) with its article, e.g. "a regular file",
    "a directory", "a symlink", "a FIFO", "a socket", "a character device", "a block device";
    "a special file" for any other type."""
    return next((name for test, name in _NAMES if test(mode)), "a special file")
