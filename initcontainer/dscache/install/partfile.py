"""A plain file fetched in parts (`parts.py`) into one attempt's partial file, resumable part by part.

Each part's bytes are written at their offsets (`pwrite`) by the thread that fetches it. A part done
goes to one bookkeeping thread, which makes its bytes durable (`fdatasync`) before it lists the part
in the pin record (`staging.record_json`): a later run, even after the machine crashed, resumes only
parts whose bytes are on disk. The same thread hashes the file in order as its finished prefix
grows (reading back from the page cache), so the whole object is verified as one stream would be.
No fetching thread ever waits for the disk or a hash: an `fdatasync` flushes the whole file, and
one per part in each fetching thread held the connections idle while the disk caught up (4 x 512 MB
over S3 through the network model: 32 s, against 10 s for rclone).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from dscache.install.digests import Hashes, wanted
from dscache.install.parts import Span, coalesce, fetch_parts, missing, prefix_end, split
from dscache.install.staging import record_json
from dscache.layouts.plan import WorkItem
from dscache.remotes.base import Pin, Remote
from dscache.store.atomic import write_json_atomic

_STOP = -1


class _PartFile:
    """The `PartSink` of one partial file, and its bookkeeping thread."""

    def __init__(
        self,
        fd: int,
        item: WorkItem,
        record: Path,
        *,
        pin: Pin,
        done: list[Span],
        added: Callable[[int], None],
    ) -> None:
        self.fd, self.item, self.record, self.pin, self.added = fd, item, record, pin, added
        self.parts: list[Span] = []
        self.have = coalesce(done)
        self.lock = threading.Lock()
        self.finished: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.hashes: Hashes | None = None
        self.hashed = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._keep, name="part records", daemon=True)

    def chunk(self, index: int, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written
        with self.lock:
            self.added(len(data))

    def done(self, index: int) -> None:
        if self.error is not None:
            raise self.error
        self.finished.put(index)

    def _keep(self) -> None:
        try:
            while (index := self.finished.get()) != _STOP:
                os.fdatasync(self.fd)  # the record never lists bytes a crash of the machine could lose
                self.have = coalesce([*self.have, self.parts[index]])
                self.record.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(self.record, record_json(self.pin, self.have), pretty=False, durable=False)
                self._hash_front()
        except BaseException as exc:  # raised by the next `done` and by `close`
            self.error = exc

    def _hash_front(self) -> None:
        """Hash from where hashing stopped to the end of the finished prefix."""
        if self.hashes is None:  # after the first answer: the pin says what the remote vouches for
            self.hashes = Hashes(wanted(self.pin) if self.item.verify else ())
        end = prefix_end(self.have, 0)
        while self.hashed < end:
            block = os.pread(self.fd, min(1 << 20, end - self.hashed), self.hashed)
            if not block:
                break
            self.hashes.update(block)
            self.hashed += len(block)

    def stop(self) -> None:
        """Wait for the bookkeeping of the parts done so far."""
        self.finished.put(_STOP)
        self.thread.join()

    def close(self) -> dict[str, str]:
        """`stop`, then the digests of the finished prefix; raises what the bookkeeping raised."""
        self.stop()
        if self.error is not None:
            raise self.error
        self._hash_front()
        assert self.hashes is not None
        return self.hashes.hexdigests()


def copy_in_parts(
    remote: Remote,
    item: WorkItem,
    part: Path,
    record: Path,
    *,
    pin: Pin,
    added: Callable[[int], None],
    done: list[Span],
    size: int,
    streams: int,
) -> tuple[int, dict[str, str]]:
    """Fetch the ranges of `item` that `done` lacks into `part`, in parts of `size` bytes on up to
    `streams` streams, keeping `record` (the pin and the finished ranges) up to date; `added(n)` is
    called for every n bytes in the file (those already there first). Returns (bytes in the file,
    the digests of all of them). Raises what `fetch_parts` raises, and OSError."""
    assert item.size is not None
    fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        sink = _PartFile(fd, item, record, pin=pin, done=done, added=added)
        added(sum(b - a for a, b in sink.have))
        sink.parts = split(missing(sink.have, 0, item.size), size)
        sink.thread.start()
        try:
            fetch_parts(remote, item.remote_path, sink.parts, pin, streams=streams, sink=sink)
        except BaseException:
            sink.stop()  # the parts finished meanwhile stay recorded for a later run
            raise
        digests = sink.close()
        return os.fstat(fd).st_size, digests
    finally:
        os.close(fd)
