"""The cache's writer lock: one writer per volume, with stale-holder detection.

Why not `filelock`/flock: on NFS an flock held by a dead client can hang for minutes, and nothing
tells who holds it. This lock is a file created with O_EXCL (atomic on NFSv3+ and local disks) that
names its holder (host, pid, start) and carries a heartbeat (its mtime, refreshed by a thread). A
holder is stale when its heartbeat is older than `stale_after`, or when it runs on this host and its
pid is gone; a stale lock is broken by renaming it away (only one breaker can win the rename).
Readers never take this lock.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

from dscache.errors import DscacheError
from dscache.store.liveness import pid_alive


class LockTimeoutError(DscacheError):
    """Another live writer held the lock for longer than the timeout."""


class WriterLock:
    """Context manager holding `<cache>/.dscache/writer.lock`."""

    def __init__(
        self, path: Path, timeout: float = 600.0, stale_after: float = 60.0, heartbeat: float = 5.0
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.stale_after = stale_after
        self.heartbeat = heartbeat
        self.token = secrets.token_hex(8)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict[str, object] | None:
        """The current holder's record, or None if unlocked or unreadable."""
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _is_stale(self) -> bool:
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return False
        if age > self.stale_after:
            return True
        holder = self.holder()
        if holder is None:
            return age > self.heartbeat * 2  # a holder writes its record right after creating the file
        return holder.get("host") == socket.gethostname() and not pid_alive(int(str(holder.get("pid", 0))))

    def _try_create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        record = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "token": self.token}
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def _break_stale(self) -> None:
        grave = self.path.with_name(f"{self.path.name}.stale.{self.token}")
        try:
            os.rename(self.path, grave)
        except FileNotFoundError:
            return
        grave.unlink(missing_ok=True)

    def describe_holder(self) -> str:
        holder = self.holder() or {}
        try:
            beat = f"{time.time() - self.path.stat().st_mtime:.0f}s ago"
        except FileNotFoundError:
            beat = "unknown"
        return f"host={holder.get('host', '?')} pid={holder.get('pid', '?')} last heartbeat {beat}"

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.05
        while not self._try_create():
            if self._is_stale():
                self._break_stale()
                continue
            if time.monotonic() >= deadline:
                raise LockTimeoutError(
                    f"cache writer lock {self.path} is held by another install ({self.describe_holder()}); "
                    f"gave up after {self.timeout:.0f}s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="dscache-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        holder = self.holder()
        if holder is not None and holder.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
