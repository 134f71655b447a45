"""A recorded pid is judged only where the identity recorded with it proves this pid namespace."""

from __future__ import annotations

import os

import pytest

from dscache.store import liveness
from dscache.store.liveness import host_name, process_gone, same_pid_namespace
from tests.pids import dead_pid


def test_a_pid_is_judged_only_under_this_process_identity() -> None:
    dead, node = dead_pid(), os.uname().nodename
    assert host_name() == f"{node}-pidns{os.stat('/proc/self/ns/pid').st_ino}"
    assert process_gone(host_name(), dead)
    assert not process_gone(host_name(), os.getppid())
    assert not process_gone(host_name(), os.getpid())
    assert process_gone(host_name(), os.getpid(), own_pid_too=True)
    for other in (node, f"{node}-pidns1", f"other-pidns{os.stat('/proc/self/ns/pid').st_ino}"):
        assert not same_pid_namespace(other)
        assert not process_gone(other, dead)


def test_without_a_readable_pid_namespace_no_pid_is_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    real_stat = os.stat

    def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if path == "/proc/self/ns/pid":
            raise PermissionError(13, "Permission denied", path)
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(liveness.os, "stat", stat)
    assert host_name() == f"{os.uname().nodename}-pidns?"
    assert not same_pid_namespace(host_name())
    assert not process_gone(host_name(), dead_pid())


@pytest.mark.parametrize("pid", [0, -1, 2**31, 10**20])
def test_a_pid_no_process_can_have_is_gone(pid: int) -> None:
    # A record's pid (a lease, a hold, a staging directory's name) that no process can have: gone,
    # neither a process group (0, -1) taken for alive nor an OverflowError out of os.kill.
    assert process_gone(host_name(), pid)
    assert not liveness.pid_alive(pid)
