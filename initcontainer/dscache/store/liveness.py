"""Is the process that left something behind still running? (Meaningful within one pid namespace.)"""

from __future__ import annotations

import os


def host_name() -> str:
    """Where a pid means one process: the node's name and this pid namespace's id.

    Pods on the host network share the node's name but each has its own pid namespace, so the name
    alone would let one pod judge another's live pid dead.
    """
    return f"{os.uname().nodename}-pidns{os.stat('/proc/self/ns/pid').st_ino}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def left_by_dead_process(pid_text: str) -> bool:
    """Whether a temp name's pid is gone or is ours (an earlier run of this container had it)."""
    try:
        pid = int(pid_text)
    except ValueError:
        return True
    return pid == os.getpid() or not pid_alive(pid)
