"""One publisher per version at a time: a lease object in the version directory.

Two producers publishing one version at once would each remove what the other uploaded once its own
manifest is in place (`dscache.publish.stale`), and the remote would end up with a manifest naming
removed archives. Where the remote offers a conditional create (`ExclusiveRemote`: a local directory
with `O_EXCL`, S3's `PutObject` with `If-None-Match: *`, GCS's upload with `ifGenerationMatch=0`,
Azure's Put Blob with `If-None-Match: *`), a publish first creates
`<v>/.dscache-publish-lease.json` and the second publisher refuses with one line naming the first
(host, process, start time). The holder rewrites the lease every `RENEW_SECONDS`; a lease not
renewed for `STALE_SECONDS`, or held by a process that no longer runs in this pid namespace, is a
killed publisher's, and the next publish takes it over (delete, then the conditional create again:
of two publishers taking over the same stale lease at the same moment, both may win, which the
removal rule of `stale.remove_stale` still keeps from breaking the live version). Staleness is judged
by the time written in the lease, so producers' clocks must agree to within minutes.

The lease's `host` is its holder's `store.liveness.host_name()` (node and pid namespace): its pid is
judged only where that identity is the reader's own, since two publish pods on one node's host network
share the node's name but not their pids. A lease of an older dscache names a bare host name, which
proves no pid namespace: it is judged by its age alone (an older dscache, in turn, never finds this
one's `host` equal to its host name, so it too waits for the lease to lapse).

The Hugging Face Hub has no conditional create of a file (its commits are atomic, and a commit can
name its parent, which `HfRemote` does not use today): there a publish holds no lease, and
`stale.remove_stale` alone keeps a concurrent publisher from removing what the live manifest names.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from dscache.layouts.published import PUBLISH_LEASE
from dscache.publish.pack import PublishError
from dscache.remotes.base import NotFoundError, Remote, RemoteError
from dscache.store.liveness import host_name, process_gone

RENEW_SECONDS = 60.0
STALE_SECONDS = 600.0


@runtime_checkable
class ExclusiveRemote(Protocol):
    """A remote that creates an object only if none is there, atomically."""

    def create_exclusive(self, path: str, data: bytes) -> bool | None:
        """Create `path` holding `data` unless it exists: True if created, False if it existed, None
        if the store turns out not to support it."""

    def delete_files(self, paths: list[str], message: str | None = None) -> None: ...


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: identity (`store.liveness.host_name()`; an older dscache's lease: the bare
    host name), process id, start and last renewal (seconds since the epoch)."""

    host: str
    pid: int
    started: float
    renewed: float

    def dumps(self) -> bytes:
        return json.dumps(
            {"host": self.host, "pid": self.pid, "started": self.started, "renewed": self.renewed}
        ).encode()

    @classmethod
    def loads(cls, data: bytes) -> Holder | None:
        """The holder `data` states, or None if it is not a lease this module wrote."""
        try:
            raw = json.loads(data)
            return cls(str(raw["host"]), int(raw["pid"]), float(raw["started"]), float(raw["renewed"]))
        except (ValueError, TypeError, KeyError):
            return None

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started))
        return f"process {self.pid} on {self.host}, started {started}"


def is_stale(
    holder: Holder | None, now: float, stale_seconds: float = STALE_SECONDS, *, gone: bool = False
) -> bool:
    """Pure: whether a lease held by `holder` (None: unreadable) may be taken over at `now`; `gone`:
    its holder is known dead (`holder_gone`)."""
    return holder is None or gone or now - holder.renewed > stale_seconds


def holder_gone(holder: Holder | None) -> bool:
    """Whether `holder` is a process of this pid namespace that no longer runs (a killed publish here;
    `store.liveness.process_gone`)."""
    return holder is not None and process_gone(holder.host, holder.pid)


@contextlib.contextmanager
def publish_lease(
    remote: Remote,
    vdir: str,
    what: str,
    log: Callable[[str], None] = lambda _msg: None,
    *,
    renew_seconds: float = RENEW_SECONDS,
    stale_seconds: float = STALE_SECONDS,
) -> Iterator[str | None]:
    """Hold the publish lease of `vdir` for the block (the lease's path; None on a remote without a
    conditional create, where nothing is held). Raises PublishError naming the holder when another
    publish holds a lease renewed within `stale_seconds`, RemoteError."""
    if not isinstance(remote, ExclusiveRemote):
        yield None
        return
    path = f"{vdir}/{PUBLISH_LEASE}"
    now = time.time()
    mine = Holder(host_name(), os.getpid(), now, now)
    created = remote.create_exclusive(path, mine.dumps())
    if created is None:
        log(f"{remote.url} does not support conditional writes: publishing {what} without a lease")
        yield None
        return
    if not created:
        try:
            holder = Holder.loads(remote.read_bytes(path))
        except NotFoundError:
            holder = None  # released meanwhile
        if not is_stale(holder, time.time(), stale_seconds, gone=holder_gone(holder)):
            assert holder is not None
            raise PublishError(
                f"{what}: another publish of this version is running ({holder.describe()}; lease "
                f"{remote.url}/{path}); wait for it to finish (a killed publish's lease lapses "
                f"{int(stale_seconds)}s after its last renewal, at once for a publish in its pid namespace)"
            )
        log(f"taking over the lapsed publish lease {remote.url}/{path}")
        remote.delete_files([path], f"dscache publish: take over the lapsed lease of {vdir}")
        if not remote.create_exclusive(path, mine.dumps()):
            raise PublishError(f"{what}: another publish of this version took over its lapsed lease first")
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(remote, path, mine, stop, renew_seconds), name="dscache-lease", daemon=True
    )
    renewer.start()
    try:
        yield path
    finally:
        stop.set()
        renewer.join()
        with contextlib.suppress(RemoteError):
            if _still_mine(remote, path, mine):
                remote.delete_files([path], f"dscache publish: release the lease of {vdir}")


def _still_mine(remote: Remote, path: str, mine: Holder) -> bool:
    """Whether the lease at `path` is still `mine` (not taken over after it lapsed). Raises RemoteError."""
    try:
        now = Holder.loads(remote.read_bytes(path))
    except NotFoundError:
        return False
    return now is not None and (now.host, now.pid, now.started) == (mine.host, mine.pid, mine.started)


def _renew(remote: Remote, path: str, mine: Holder, stop: threading.Event, every: float) -> None:
    """Rewrite the lease every `every` seconds until `stop`, while it is still `mine` (a failed
    renewal is retried next time)."""
    while not stop.wait(every):
        renewed = Holder(mine.host, mine.pid, mine.started, time.time())
        with tempfile.TemporaryDirectory(prefix="dscache-lease-") as tmp:
            local = Path(tmp) / "lease.json"
            local.write_bytes(renewed.dumps())
            with contextlib.suppress(RemoteError, OSError):
                if _still_mine(remote, path, mine):
                    remote.put_file(path, local)
