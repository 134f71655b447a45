"""Process ids for tests of liveness: `dead_pid()`, the pid of a process that has ended."""

from __future__ import annotations

import subprocess
import sys


def dead_pid() -> int:
    """The pid of a child that ran and was reaped: no process has it (until the kernel reuses it,
    which takes a full turn of the pid space)."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait(30)
    return child.pid
