"""Is the process that left something behind still running? Only its own pid namespace can tell.

A pid names one process only within one pid namespace: pods on a node's host network share the
node's name, but each has its own pid namespace, where another pod's pid is either invisible or
another process. So whatever records a pid for others to judge (a publish lease, a pending scratch
hold, a scratch staging directory's name) records `host_name()` with it, and a reader trusts the pid
only where `same_pid_namespace` proves it: the recorded identity is its own. Anywhere else (another
node, another pod, a record without an identity, such as a lease of an older dscache naming a bare
host name) the pid proves nothing, and the record is judged by its age alone.

The writer lock (`store.lock`) is `filelock.SoftFileLease`'s, which records and compares an identity
of the same kind (host name and pid namespace) in its own marker format.
"""

from __future__ import annotations

import os
import sys

UNKNOWN_NAMESPACE = "?"
"""The pid-namespace part of `host_name()` on Linux where /proc does not show it: proves nothing."""


def host_name() -> str:
    """This process's identity: the node's name and its pid namespace's id, `NODE-pidnsINODE` (e.g.
    `node-1-pidns4026531836`). Where /proc does not show the namespace: `NODE-pidns?` on Linux (never
    proves a pid), the node name alone elsewhere (macOS has no pid namespaces)."""
    node = os.uname().nodename
    try:
        return f"{node}-pidns{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return f"{node}-pidns{UNKNOWN_NAMESPACE}" if sys.platform.startswith("linux") else node


def same_pid_namespace(host: str) -> bool:
    """Whether a pid recorded with the identity `host` (a `host_name()`) names a process of this pid
    namespace, so that `pid_alive` can judge it."""
    here = host_name()
    return host == here and not here.endswith(f"-pidns{UNKNOWN_NAMESPACE}")


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` runs in this pid namespace (a process of another user counts). A pid
    no process can have (under 1: `kill` would signal a process group; past the kernel's pid type)
    names none."""
    if pid < 1:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def process_gone(host: str, pid: int, *, own_pid_too: bool = False) -> bool:
    """Whether the process `pid`, recorded with the identity `host`, is known to have ended: only where
    `same_pid_namespace(host)`, and there when no process `pid` runs or, with `own_pid_too`, when
    `pid` is this process's own (the record is an earlier run's that had this pid)."""
    if not same_pid_namespace(host):
        return False
    return (own_pid_too and pid == os.getpid()) or not pid_alive(pid)


def left_by_dead_process(pid_text: str) -> bool:
    """Whether a temp name's pid is gone or is ours (an earlier run of this container had it). Temp
    names carry no identity: this is for a directory only one pod writes (its links emptyDir)."""
    try:
        pid = int(pid_text)
    except ValueError:
        return True
    return pid == os.getpid() or not pid_alive(pid)
