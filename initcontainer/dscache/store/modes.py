"""Modes of the files dscache writes: read-only for everyone, and executable where the source was.

A regular file is installed `r--r--r--`, or `r-x r-x r-x` when the source marks it executable (any
execute bit in an archive member's mode, or in a `file://` remote's file). Write, setuid, setgid and
sticky bits are never kept. Scratch copies get the same modes as the cache.
"""

from __future__ import annotations

READ_ONLY = 0o444
EXECUTABLE = 0o555
_ANY_EXECUTE = 0o111


def is_executable(mode: int) -> bool:
    """Whether a source mode (archive member, stat) marks a file executable: any execute bit."""
    return bool(mode & _ANY_EXECUTE)


def file_mode(executable: bool) -> int:
    """The mode dscache gives a regular file."""
    return EXECUTABLE if executable else READ_ONLY
