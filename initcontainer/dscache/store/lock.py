"""The cache's writer lock: one writer per volume, judged without ever comparing two clocks.

Built on `filelock.SoftFileLease`, which does what a shared volume needs (read in the source of
filelock 4.3.1, the minimum version required):
- A marker file created with O_EXCL names its holder (pid, host with its pid namespace, process start
  time) and carries a claim token and the lease length; a thread refreshes its mtime every `heartbeat`
  seconds (`utime` on the open file, so the kernel or the NFS server stamps it).
- A contender takes the lock over once it has watched the marker stay unchanged (mtime, inode, ctime)
  for `stale_after` seconds on its OWN monotonic clock. Timestamps are only compared with each other
  for equality, never with a clock: a holder, NFS server or contender whose clock runs minutes ahead
  or behind cannot make a live lock look stale nor a dead one look fresh, and mtime granularity only
  needs to be finer than `heartbeat` (NFS on ext3: 1 s). Reading the marker opens it, which makes an
  NFS client revalidate its cached attributes (close-to-open).
- A holder on this host whose pid is gone (or reused: its start time differs) is taken over at once;
  one on another host only by the lease, since nothing else can prove it dead.
- A takeover swaps the marker atomically (`renameat2(RENAME_EXCHANGE)`) and re-checks inode and mtime
  first, so of several contenders breaking one stale lock exactly one wins; release never removes a
  successor's marker, and the heartbeat reports a lost claim (`compromise`, `on_compromise`).
`filelock.StrictSoftFileLock` was not chosen: its claims are never broken by age, only by
`force_break()`, so an installer that died on another node would block every later install until an
operator stepped in. `filelock.SoftFileLock` judges staleness by pid only (or by an mtime age with
`lifetime`, the clock comparison this lock must not make).

What filelock lacks is a synchronous answer to "is the lock still mine?" right before an irreversible
step: its heartbeat notices a takeover up to two heartbeats late, and a holder that was paused
(SIGSTOP, a frozen VM, a partitioned NFS client) resumes before its heartbeat runs. `fence()` adds
it: read the marker's token, refresh the heartbeat (restarting every contender's watch), read the
token again. Writers call it before every publish rename, ref write, molmospaces manifest write and
deletion, and once per progress tick, so a holder that lost the lock stops with `LockLostError` and
leaves its staging to the new holder. What no lease can close without fencing tokens that the
filesystem would check: a holder paused for longer than the lease between a fence and the step it
guards (microseconds apart) still takes that one step, one it had fully prepared (a complete,
verified version, whose rename fails if that version was published meanwhile; a ref).

A paused installer's worker processes resume with it and write on until its next progress tick
(0.5 s) kills them; they write only into their own attempts' paths, and rename an item's result into
place only after `worker_fence()` (`install/staging.py`). filelock forgets a lock's claim in a forked
child, so that fence compares the marker's token with the holder's claim when the fence was made. A
check that passed vouches for the lock for one heartbeat interval (at most a quarter of the lease): a
contender takes over only after watching the marker unchanged for a lease, and the check's own
refresh restarts that watch (or the previous refresh did, within the mtime granularity, which is
below the heartbeat). The monotonic clock runs on while a process is stopped, so after any longer
pause the next call checks again. Workers call it twice per item; a check costs two marker reads and
a utime (47 us on a local disk, an NFS round trip each), a trusted call 0.2 us.

An install team (`team.py`, `dscache install --workers K`) owns the volume between its short steps
under this lock: `acquire` admits a writer only when no team record is there or the record names
the writer's own `team`, waits otherwise, and takes the volume over from a team whose record and
member files stayed unchanged for a whole lease (its workers are gone).

Every writer of a volume must use the same lease (all dscache builds do; another lease is refused with
a message). A dead holder on another node delays the next writer by one lease (60 s). Markers written
by dscache builds from before this lock (a JSON record) look malformed to filelock, which takes them
over after 2 s unchanged: do not run older installers against the same volume. Readers never lock.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from dscache.api.durations import format_age
from dscache.api.urls import hide_userinfo
from dscache.errors import DscacheError
from dscache.store import team as teams
from dscache.store.atomic import write_json_atomic

Fence = Callable[[], None]
"""Called by a writer before each irreversible step; raises `LockLostError` once the lock was lost."""

LEASE = 60.0
HEARTBEAT = 5.0
POLL = 0.5
WAIT_NOTICE = 1.0
"""Seconds a writer waits silently for the lock; then one line says who holds it (info: not with -q)."""
HOLDER_SUFFIX = ".holder"
"""`writer.lock.holder`: what the marker does not record (the command, since when), for that line."""


class LockError(DscacheError):
    """The writer lock could not be had or kept; the message names the lock and its holder."""


class LockTimeoutError(LockError):
    """Another live writer held the lock for longer than the timeout."""


class LockLostError(LockError):
    """Another writer took the lock over while this one was paused or cut off for longer than the lease."""


class WriterLock:
    """Context manager holding `<cache>/.dscache/writer.lock`.

    `timeout`: seconds to wait for a live holder; `stale_after`: the lease, seconds a holder's
    heartbeat must be seen unchanged before it is taken over; `heartbeat`: seconds between refreshes
    (below `stale_after`, above the filesystem's mtime granularity; default 5 s, at most a quarter of
    the lease). Raises `LockTimeoutError` or
    `LockError` on entry; on exit, an error raised inside the block after the lock was lost becomes
    `LockLostError` (the cause the user needs to see).

    `team`: the install team (`team.py`) this writer belongs to, if any; `guard_team=False` for the
    member leases of a team, which are no gate of the volume.
    """

    def __init__(
        self,
        path: Path,
        timeout: float = 600.0,
        stale_after: float = LEASE,
        heartbeat: float | None = None,
        *,
        team: str | None = None,
        guard_team: bool = True,
    ) -> None:
        from filelock import SoftFileLease  # 15-40 ms: only a writer that takes the lock pays for it

        if heartbeat is None:
            heartbeat = min(HEARTBEAT, stale_after / 4)
        self.path = path
        self.timeout = timeout
        self.stale_after = stale_after
        self.heartbeat = heartbeat
        self.team, self.guard_team = team, guard_team
        self._lease = SoftFileLease(
            path,
            lease_duration=stale_after,
            heartbeat_interval=heartbeat,
            thread_local=False,
            poll_interval=min(POLL, heartbeat),
        )

    def describe_holder(self) -> str:
        """`host=H pid=P` of the marker's holder, as far as it can be read, and the command and the
        time it took the lock when its holder record (`writer.lock.holder`) is that holder's."""
        owner = self._lease.owner
        if owner is None:
            return "holder unknown: the lock file is missing or unreadable"
        shown = f"host={owner.hostname} pid={owner.pid}"
        record = holder_record(self._holder_path)
        if record is None or (record.get("pid"), record.get("host")) != (owner.pid, owner.hostname):
            return shown
        age = time.time() - float(record.get("sinceEpoch") or 0)
        ago = f", {format_age(age)}" if abs(age) < 10 * 365 * 86400 else ""  # else: no time recorded
        return f"{shown} command={record.get('command')!r}, since {record.get('since')}{ago}"

    @property
    def _holder_path(self) -> Path:
        return self.path.with_name(self.path.name + HOLDER_SUFFIX)

    def _record_holder(self) -> None:
        """Write `writer.lock.holder` for the writers that will wait on this one (best effort: the
        lock itself does not depend on it)."""
        owner = self._lease.owner
        if owner is None or not self.guard_team:
            return
        record = {
            "pid": owner.pid,
            "host": owner.hostname,
            "command": command_line(sys.argv),
            "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "sinceEpoch": round(time.time(), 3),
        }
        with contextlib.suppress(OSError):
            write_json_atomic(self._holder_path, record, durable=False)

    def _notice(self, message: str) -> None:
        import logging

        logging.getLogger(__name__).info(message)

    def acquire(self) -> None:
        """Take the lock, then wait while another live install team owns the volume (see `team.py`)."""
        started = time.monotonic()
        deadline = started + self.timeout
        watch = teams.TeamWatch(self.stale_after)
        control = self.path.parent
        told = False
        while True:
            self._acquire_lease(max(deadline - time.monotonic(), 0.0))
            if not self.guard_team:
                return
            record = teams.read_team(control)
            if record is None or record.team == self.team:
                self._record_holder()
                return
            if watch.dead(teams.signature(control), time.monotonic()):
                teams.end_team(control)  # its workers are gone: the volume is free again
                self._record_holder()
                return
            self.release()
            if not told and time.monotonic() - started >= WAIT_NOTICE:
                told = True
                self._notice(
                    f"waiting: cache {control.parent} is being installed by the workers of another install "
                    f"(team {record.team}, {record.workers} workers); it is taken over when all of them "
                    f"stop for {self.stale_after:.0f}s; giving up after {self.timeout:.0f}s (--lock-timeout)"
                )
            if time.monotonic() >= deadline:
                raise LockTimeoutError(
                    f"cache {control.parent} is being installed by the workers of another install "
                    f"(team {record.team}, {record.workers} workers); gave up after {self.timeout:.0f}s "
                    f"(a team whose workers all stop for {self.stale_after:.0f}s is taken over)"
                )
            time.sleep(min(POLL, self.heartbeat))

    def _acquire_lease(self, timeout: float) -> None:
        from filelock import LeaseSettingsMismatch, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            if self.guard_team and timeout > WAIT_NOTICE:
                try:
                    self._lease.acquire(timeout=WAIT_NOTICE)
                    return
                except Timeout:
                    self._notice(self._waiting())
            self._lease.acquire(timeout=max(timeout - (time.monotonic() - started), 0.0))
        except Timeout:
            raise LockTimeoutError(
                f"cache writer lock {self.path} is held by another writer ({self.describe_holder()}); "
                f"gave up after {self.timeout:.0f}s (a holder whose heartbeat stops for "
                f"{self.stale_after:.0f}s is taken over)"
            ) from None
        except LeaseSettingsMismatch as err:
            raise LockError(str(err)) from None

    def _waiting(self) -> str:
        """The line a waiting writer shows: the lock, its holder, and when it is taken over."""
        return (
            f"waiting for the cache writer lock {self.path}, held by another writer "
            f"({self.describe_holder()}); it is taken over when its holder's heartbeat stops for "
            f"{self.stale_after:.0f}s (at once when the holder was on this host and its process is gone); "
            f"giving up after {self.timeout:.0f}s (--lock-timeout)"
        )

    def _still_ours(self) -> bool:
        if self._lease.compromise is not None:
            return False
        owner, token = self._lease.owner, self._lease.token
        return owner is not None and token is not None and owner.token == token

    def _lost(self) -> LockLostError:
        return LockLostError(
            f"cache writer lock {self.path} was taken over ({self.describe_holder()}) while this writer was "
            f"paused or cut off for more than its {self.stale_after:.0f}s lease; stopped before changing "
            "the cache any further (staging is left for the new writer)"
        )

    def fence(self) -> None:
        """Raise `LockLostError` unless this process still holds the lock; renew the lease if it does."""
        self._check(self._still_ours)

    def worker_fence(self) -> Fence:
        """A fence for the processes this holder forks (where `fence` would always raise): raises
        `LockLostError` once the marker no longer carries this holder's present claim; checks at most
        once per heartbeat interval, and always after a longer pause (see the module docstring).
        Raises `LockError` if the lock is not held."""
        token = self._lease.token
        if token is None:
            raise LockError(f"cache writer lock {self.path} is not held")
        return _WorkerFence(self, token, min(self.heartbeat, self.stale_after / 4))

    def _holds(self, token: str) -> bool:
        owner = self._lease.owner
        return owner is not None and owner.token == token

    def _check(self, ours: Callable[[], bool]) -> None:
        if not ours():
            raise self._lost()
        with contextlib.suppress(OSError):  # a failed refresh is judged by the second look
            os.utime(self.path, follow_symlinks=False)
        if not ours():
            raise self._lost()

    def release(self) -> None:
        """Let go; a successor's marker (or holder record) is never removed."""
        if self._lease.is_locked:
            if self.guard_team and self._still_ours():
                with contextlib.suppress(OSError):
                    self._holder_path.unlink(missing_ok=True)
            self._lease.release()

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        lost = None
        if isinstance(exc, Exception) and not isinstance(exc, LockError) and not self._still_ours():
            lost = self._lost()
        self.release()
        if lost is not None:
            raise lost from exc


def command_line(argv: list[str]) -> str:
    """Pure: the command as a holder record shows it (`dscache install --cache ...`), credentials in
    URLs hidden, at most 200 characters."""
    shown = " ".join(["dscache", *(hide_userinfo(a) for a in argv[1:])])
    return shown if len(shown) <= 200 else shown[:199] + "…"


def holder_record(path: Path) -> dict[str, Any] | None:
    """The holder record at `path`, or None when there is none or it cannot be read."""
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


@dataclass
class _WorkerFence:
    """`WriterLock.worker_fence()`: the claim `token` checked on the marker, trusted for `trust` s."""

    lock: WriterLock
    token: str
    trust: float
    checked: float = -math.inf
    """Monotonic time at which the last passed check began."""

    def __call__(self) -> None:
        began = time.monotonic()
        if began - self.checked < self.trust:
            return
        self.lock._check(lambda: self.lock._holds(self.token))
        self.checked = began
