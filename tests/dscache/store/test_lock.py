"""The writer lock: two writers never overlap, and a dead holder never blocks forever."""

from __future__ import annotations

import json
import os
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


def test_holder_on_another_host_is_stale_only_after_its_heartbeat_stops(tmp_path: Path) -> None:
    lock_path = tmp_path / "writer.lock"
    lock_path.write_text(json.dumps({"host": "other-node", "pid": 1, "since": 0, "token": "x"}))
    with (
        pytest.raises(LockTimeoutError, match="host=other-node"),
        WriterLock(lock_path, timeout=0.3, stale_after=30),
    ):
        pass
    old = time.time() - 120
    os.utime(lock_path, (old, old))
    with WriterLock(lock_path, timeout=2, stale_after=30):
        assert json.loads(lock_path.read_text())["host"] == socket.gethostname()


def test_heartbeat_keeps_a_live_holder_fresh(tmp_path: Path) -> None:
    lock_path = tmp_path / "writer.lock"
    with WriterLock(lock_path, heartbeat=0.1):
        old = time.time() - 100
        os.utime(lock_path, (old, old))
        time.sleep(0.4)
        assert time.time() - lock_path.stat().st_mtime < 5
