"""The writer lock: two writers never overlap, and a dead holder never blocks forever."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dscache.store.lock import LockTimeoutError, WriterLock

HOLD = """
import sys, time
from pathlib import Path
from dscache.store.lock import WriterLock
with WriterLock(Path(sys.argv[1]), heartbeat=0.2):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_times_out_naming_the_holder(tmp_path: Path) -> None:
    lock_path = tmp_path / "writer.lock"
    proc = _holder(lock_path, 30)
    try:
        with pytest.raises(LockTimeoutError) as err, WriterLock(lock_path, timeout=0.5):
            pass
        assert f"pid={proc.pid}" in str(err.value)
        assert socket.gethostname() in str(err.value)
    finally:
        proc.kill()
        proc.wait()


def test_waiting_writer_gets_the_lock_when_the_holder_finishes(tmp_path: Path) -> None:
    lock_path = tmp_path / "writer.lock"
    proc = _holder(lock_path, 0.5)
    start = time.monotonic()
    with WriterLock(lock_path, timeout=10):
        assert time.monotonic() - start >= 0.2
    proc.wait()
    assert not lock_path.exists()


def test_lock_of_a_killed_holder_on_this_host_is_broken_at_once(tmp_path: Path) -> None:
    lock_path = tmp_path / "writer.lock"
    proc = _holder(lock_path, 60)
    proc.kill()
    proc.wait()
    assert lock_path.exists()
    start = time.monotonic()
    with WriterLock(lock_path, timeout=5):
        pass
    assert time.monotonic() - start < 2


def test_heartbeat_keeps_a_live_holder_fresh(tmp_path: Path) -> None:
    lock_path = tmp_path / "writer.lock"
    with WriterLock(lock_path, heartbeat=0.1):
        old = time.time() - 100
        os.utime(lock_path, (old, old))
        time.sleep(0.4)
        assert time.time() - lock_path.stat().st_mtime < 5


# A holder that may pose as another host (`socket.gethostname`) and stamp its heartbeats with a clock
# `skew` seconds off, in whole seconds (coarse mtime): `os.utime(x)` becomes `os.utime(x, (t, t))`.
# With `fence` it waits for a line on stdin, calls `fence()` and prints the outcome.
FOREIGN = """
import os, socket, sys, time
from pathlib import Path
path, seconds, host, skew, lease, mode = sys.argv[1:7]
if host:
    socket.gethostname = lambda: host
if float(skew):
    real_utime = os.utime
    def skewed_utime(target, times=None, **kwargs):
        if times is None and "ns" not in kwargs:
            stamp = float(int(time.time() + float(skew)))
            times = (stamp, stamp)
        real_utime(target, times, **kwargs)
    os.utime = skewed_utime
from dscache.store.lock import WriterLock
with WriterLock(Path(path), stale_after=float(lease), heartbeat=0.2) as lock:
    print("held", flush=True)
    if mode == "fence":
        from dscache.store.lock import LockError
        sys.stdin.readline()
        try:
            lock.fence()
            print("fenced", flush=True)
        except LockError as err:
            print(f"lost: {err}", flush=True)
            sys.exit(1)
    else:
        time.sleep(float(seconds))
"""

# One of several contenders for the same lock: prints `won` (and holds it) or `lost` (timed out).
CONTENDER = """
import sys, time
from pathlib import Path
from dscache.store.lock import LockTimeoutError, WriterLock
try:
    with WriterLock(Path(sys.argv[1]), timeout=float(sys.argv[2]), stale_after=1.0, heartbeat=0.2):
        print("won", flush=True)
        time.sleep(float(sys.argv[3]))
except LockTimeoutError:
    print("lost", flush=True)
"""


def _foreign_holder(
    path: Path,
    *,
    host: str = "",
    skew: float = 0,
    lease: float = 1.0,
    mode: str = "hold",
    seconds: float = 30,
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", FOREIGN, str(path), str(seconds), host, str(skew), str(lease), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()


def _skew_own_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """This process's wall clock runs `seconds` ahead (negative: behind) of the holder's and the disk's."""
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + seconds)


def test_observer_clock_ahead_never_breaks_a_live_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_path = tmp_path / "writer.lock"
    proc = _foreign_holder(lock_path, host="node-b")
    try:
        _skew_own_clock(monkeypatch, +120)
        with (
            pytest.raises(LockTimeoutError, match="host=node-b"),
            WriterLock(lock_path, timeout=3, stale_after=1.0),
        ):
            pass
        assert proc.poll() is None
    finally:
        _stop(proc)


@pytest.mark.parametrize("skew", [-120, +120])
def test_heartbeats_stamped_by_a_skewed_coarse_clock_keep_the_lock(tmp_path: Path, skew: float) -> None:
    lock_path = tmp_path / "writer.lock"
    proc = _foreign_holder(lock_path, host="node-b", skew=skew, lease=2.5)
    try:
        time.sleep(0.5)  # a few heartbeats
        assert abs(lock_path.stat().st_mtime - time.time() - skew) < 3  # the stamps are really skewed
        with (
            pytest.raises(LockTimeoutError, match="host=node-b"),
            WriterLock(lock_path, timeout=5, stale_after=2.5),
        ):
            pass
    finally:
        _stop(proc)


def test_dead_holder_on_another_host_is_taken_over_after_the_lease_with_the_observer_clock_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_path = tmp_path / "writer.lock"
    _stop(_foreign_holder(lock_path, host="node-b"))  # killed: no release, no pid this host can check
    assert "host=node-b" in WriterLock(lock_path).describe_holder()
    _skew_own_clock(monkeypatch, -120)
    start = time.monotonic()
    with WriterLock(lock_path, timeout=10, stale_after=1.0) as lock:
        waited = time.monotonic() - start
        assert f"pid={os.getpid()}" in lock.describe_holder()
    assert 1.0 <= waited < 10  # one lease of silence on this process's own clock, not forever
    assert not lock_path.exists()


def test_two_breakers_racing_for_a_stale_lock_exactly_one_wins(tmp_path: Path) -> None:
    lock_path = tmp_path / "writer.lock"
    _stop(_foreign_holder(lock_path, host="node-b"))
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(lock_path), "3", "30"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    try:
        deadline = time.monotonic() + 20
        while sum(p.poll() is not None for p in racers) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        outcomes = {p.pid: p.stdout.readline().strip() for p in racers if p.stdout is not None}
        assert sorted(outcomes.values()) == ["lost", "lost", "lost", "won"]
        (winner,) = [p for p in racers if outcomes[p.pid] == "won"]
        assert winner.poll() is None  # the others gave up while the winner held the lock
    finally:
        for proc in racers:
            _stop(proc)


def test_paused_holder_finds_the_takeover_at_its_next_fence(tmp_path: Path) -> None:
    lock_path = tmp_path / "writer.lock"
    proc = _foreign_holder(lock_path, mode="fence")
    assert proc.stdin is not None and proc.stdout is not None
    os.kill(proc.pid, signal.SIGSTOP)  # the holder and its heartbeat thread stand still
    try:
        with WriterLock(lock_path, timeout=10, stale_after=1.0) as successor:
            os.kill(proc.pid, signal.SIGCONT)
            proc.stdin.write("go\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            assert line.startswith("lost: ") and "was taken over" in line
            assert f"pid={os.getpid()}" in line  # names the new holder
            assert proc.wait(timeout=10) == 1
            successor.fence()  # the old holder's exit left the successor's marker alone
            assert f"pid={os.getpid()}" in successor.describe_holder()
        assert not lock_path.exists()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            _stop(proc)
