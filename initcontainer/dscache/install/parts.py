"""Many streams per object: one remote object fetched as parallel ranged parts.

One TCP stream from an object store is capped well below a node's link (the benchmark's model: 50 MB/s
per connection, 20 ms to the first byte), so a large object is cut into parts fetched at once, each
by `Remote.stream(path, start, length, pin)`, i.e. with the remote's own resume, retries and
conditional requests (If-Match on the ETag, If-Unmodified-Since), and the object is verified whole
at the end by the caller. Written once here for every remote with ranged reads (S3, GCS, Azure,
HTTP, HF, file://), not per remote. Ported idea: s5cmd's and the AWS CRT's multipart download (a
fixed budget of ranged GETs per object); the sizes here adapt to the object and the budget instead.

The first part goes alone until its first bytes arrive: its answer completes the pin (ETag, size,
the digests the remote vouches for), and every later part carries a copy of it, so every part's
requests are conditional on the same object and a replaced object fails a part with
`ObjectChangedError` (the caller restarts the item whole, as for one stream). A server that answers
the first part's Range with the whole object (HTTP 200 from byte 0: `python -m http.server`, nginx
with `max_ranges 0`) ignores Range, and would send every part as a full body: that first answer is
read on to the last part's end instead (`Pin.whole_stop`) and cut into the parts as it passes them,
so the object comes in ONE GET, each byte once (bytes before the first part, or of parts a killed
run already has, are read and dropped), and no other part starts. A cut in it resumes as one
stream's would: another GET, read from byte 0 and skipped to where the cut was.

Two consumers:
- `fetch_parts` hands each part's chunks to a `PartSink` as they arrive, in any order (files: written
  at their offsets into the attempt's partial file; each part done is recorded so a later run
  fetches only the missing ones).
- `ordered_stream` yields the object's bytes in order while later parts are still downloading (the
  archive extractor): each part not yet at the front buffers at most `read_ahead` bytes, then its
  thread waits (the TCP window then holds the rest), so memory is bounded by streams x read_ahead.

Threads, not processes: the part streams spend their time in socket reads and hashlib/`pwrite`
calls, which release the GIL; the installer's worker processes (`workers.py`) each run their own.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Protocol

from dscache.api.sizes import parse_part_size, parse_streams
from dscache.remotes.base import ObjectChangedError, Pin, Remote, RemoteError, RemoteSettingError
from dscache.remotes.retry import SharedBudget, sharing

Span = tuple[int, int]
"""Absolute byte range [start, stop) of a remote object."""

MIB = 1 << 20
STREAMS = 32
"""Default stream budget of one install (all items together); env DSCACHE_STREAMS."""
MIN_PART = 8 * MIB
"""Smallest part of a file written at offsets (env DSCACHE_PART_SIZE, which also sets the part of an
archive, `PartPolicy.ordered_part`): at 50 MB/s per stream and 20 ms to the first byte, a part
of 8 MiB spends ~12% of its time waiting for its first byte; objects under two parts go whole."""
MAX_PART = 64 * MIB
PARTS_PER_STREAM = 4
"""Parts per stream an object is cut into (within MIN_PART..MAX_PART): the last parts of a slow
stream are taken by the others, so one slow connection does not hold the object's tail."""
READ_AHEAD = 4 * MIB
"""Bytes a part not yet at the front may buffer for `ordered_stream`, and so the size of the parts
of an object consumed in order (`PartPolicy.ordered`): a longer part would stop on a full buffer
until the parts before it are taken, its connection idle, and an archive would come in at little
more than its front part's speed. Measured in the benchmark's network model (25 MB/s per connection,
20 ms, 100 MB/s in all; 60 archives of 50 MB): with 8 MiB parts the last archives' tails left the
link partly idle (see README's benchmark section for the figures)."""
ORDERED_BUFFERS = 1 << 30
"""Most bytes the parts behind the front may buffer in all, over every stream of an install: an
archive's part (buffered whole) is at most ORDERED_BUFFERS / DSCACHE_STREAMS, at least READ_AHEAD."""
_POLL = 0.1


def _env_value(name: str, default: int, parse: Callable[[str], int]) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError as err:
        raise RemoteSettingError(f"{name}={raw!r}: {err}") from None


@dataclass(frozen=True)
class PartPolicy:
    """The stream budget of an install and the bounds of a part's size, in bytes."""

    streams: int = STREAMS
    min_part: int = MIN_PART
    max_part: int = MAX_PART
    ordered_part: int = READ_AHEAD
    """The part of an object consumed in order (`ordered`): READ_AHEAD, or DSCACHE_PART_SIZE's."""

    @property
    def read_ahead(self) -> int:
        """Bytes a part behind the front may buffer in `ordered_stream`: a whole part, at least
        READ_AHEAD (memory: streams x read_ahead)."""
        return max(READ_AHEAD, self.ordered_part)

    @classmethod
    def from_env(cls) -> PartPolicy:
        """Defaults overridden by DSCACHE_STREAMS (a count) and DSCACHE_PART_SIZE (the smallest part,
        a size: bytes or a Kubernetes quantity such as 8Mi). Raises RemoteSettingError (bad input:
        exit code 2) naming the variable when one is not a count from 1 to `api.sizes.MAX_STREAMS` or
        a size from `api.sizes.MIN_PART_SIZE` to `api.sizes.MAX_PART_SIZE`."""
        min_part = _env_value("DSCACHE_PART_SIZE", MIN_PART, parse_part_size)
        streams = _env_value("DSCACHE_STREAMS", STREAMS, parse_streams)
        chosen = min_part if os.environ.get("DSCACHE_PART_SIZE", "").strip() else READ_AHEAD
        ordered_part = min(chosen, max(READ_AHEAD, ORDERED_BUFFERS // streams))
        return cls(streams, min_part, max(MAX_PART, min_part), ordered_part)

    def ordered(self) -> PartPolicy:
        """Pure: the bounds for an object consumed in order (an archive fed to its extractor): parts
        of exactly `ordered_part` bytes, which a part behind the front buffers whole, so it downloads
        at its connection's speed instead of waiting for the front (see READ_AHEAD)."""
        return replace(self, min_part=self.ordered_part, max_part=self.ordered_part)


def streams_per_item(budget: int, jobs: int, items: int) -> int:
    """Pure: streams one item may open when `jobs` items (of `items` to do) transfer at once and all
    of them share `budget` streams; at least 1."""
    at_once = max(1, min(jobs, items))
    return max(1, budget // at_once)


def part_size(length: int, streams: int, policy: PartPolicy) -> int | None:
    """Pure: the part size (a multiple of 1 MiB unless the bound is smaller) for `length` bytes over
    `streams` streams, or None when the object is better fetched as one stream (one stream allowed,
    or shorter than two of the smallest parts)."""
    if streams <= 1 or length < 2 * policy.min_part:
        return None
    size = math.ceil(length / (streams * PARTS_PER_STREAM))
    size = min(max(size, policy.min_part), policy.max_part)
    if size >= MIB:
        size = math.ceil(size / MIB) * MIB
    return size


def split(spans: list[Span], size: int) -> list[Span]:
    """Pure: each span cut into consecutive parts of `size` bytes; the last part of each is between
    half a part and one and a half parts long (a shorter rest joins the part before it: a request of a
    few KB would cost a first-byte wait for nothing), unless the span is shorter than that."""
    out: list[Span] = []
    for start, stop in spans:
        cuts = [(at, min(at + size, stop)) for at in range(start, stop, size)]
        if len(cuts) > 1 and cuts[-1][1] - cuts[-1][0] < size // 2:
            cuts[-2:] = [(cuts[-2][0], stop)]
        out += cuts
    return out


def coalesce(spans: list[Span]) -> list[Span]:
    """Pure: the spans sorted, with touching and overlapping ones merged."""
    out: list[Span] = []
    for start, stop in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], stop))
        else:
            out.append((start, stop))
    return out


def missing(done: list[Span], start: int, stop: int) -> list[Span]:
    """Pure: the parts of [start, stop) no span of `done` covers, in order."""
    out: list[Span] = []
    at = start
    for a, b in coalesce(done):
        if b <= at or a >= stop:
            continue
        if a > at:
            out.append((at, a))
        at = max(at, b)
    if at < stop:
        out.append((at, stop))
    return out


def prefix_end(done: list[Span], start: int) -> int:
    """Pure: where the run of `done` bytes that begins at `start` ends (`start` if none does)."""
    for a, b in coalesce(done):
        if a <= start < b:
            return b
    return start


class PartSink(Protocol):
    """Where `fetch_parts` delivers; called from the part threads, one call at a time per part."""

    def chunk(self, index: int, offset: int, data: bytes) -> None:
        """Bytes of part `index` at absolute `offset` (consecutive within a part)."""

    def done(self, index: int) -> None:
        """Every byte of part `index` was delivered."""


class _Cancelled(Exception):
    """A part stops because another failed or the consumer went away."""


def _pin_copy(pin: Pin) -> Pin:
    return Pin(pin.identity, dict(pin.checksums), dict(pin.hints))


def fetch_parts(
    remote: Remote,
    path: str,
    parts: list[Span],
    pin: Pin,
    *,
    streams: int,
    sink: PartSink,
    cancel: threading.Event | None = None,
) -> None:
    """Fetch `parts` of `path` on up to `streams` threads into `sink`; return when all are delivered.

    The first part starts alone (with `pin`, which its first answer completes); the others start once
    it delivered its first bytes, each with a copy of the pin, unless that answer was the whole
    object (the server ignores Range: `pin.whole_bodies`): then the first part's stream delivers
    every part, in order (see the module docstring). What the parts' answers vouch for is
    merged into `pin` at the end. The parts share one retry budget (`SharedBudget`): their failures
    count together, as one stream's would, and any part's progress renews it. The first failure
    cancels the other parts and is raised: `ObjectChangedError` when the object is not the pinned
    one, `RemoteError` once the retries are spent, or the sink's own error. `cancel` set from
    outside stops every part (then this returns or raises without every part delivered).
    """
    if not parts:
        return
    cancel = cancel if cancel is not None else threading.Event()
    started = threading.Event()
    whole = threading.Event()  # the first part's first answer was the whole object: it carries all
    pins = [pin] + [_pin_copy(pin) for _ in parts[1:]]
    budget = SharedBudget()

    def run(index: int) -> None:
        try:
            if cancel.is_set():  # a part queued behind one that failed
                raise _Cancelled
            start, stop = parts[index]
            chunks = remote.stream(path, start, stop - start, pin=pins[index])
            with sharing(budget):
                _deliver(index, chunks)
        except BaseException:
            cancel.set()  # before this thread takes the next part
            raise
        finally:
            started.set()

    def _deliver(index: int, chunks: Iterator[bytes]) -> None:
        """Part `index`'s stream into the sink. The first part's stream reads on to the last part's
        end when its first answer is the whole object (`Pin.whole_stop`): bytes between the parts
        (fetched before) are dropped, and each part is done as the stream passes its end."""
        first, last, pos = index == 0, index, parts[index][0]
        try:
            for chunk in chunks:
                if first:  # the answer this chunk came in decided whether the stream reads on
                    first = False
                    if pin.whole_bodies:
                        whole.set()
                        last = len(parts) - 1
                    started.set()
                data = chunk
                while data and index <= last:
                    if cancel.is_set():
                        raise _Cancelled
                    start, stop = parts[index]
                    gap = min(len(data), max(start - pos, 0))
                    take = min(len(data) - gap, stop - pos - gap)
                    if take:
                        sink.chunk(index, pos + gap, data[gap : gap + take])
                    data, pos = data[gap + take :], pos + gap + take
                    if pos >= stop:
                        sink.done(index)
                        index += 1
            if index <= last:
                raise RemoteError(f"{path}: the stream ended at byte {pos}, before byte {parts[last][1]}")
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    pin.whole_bodies = False  # from now on: what the first part's answers tell
    pin.whole_stop = parts[-1][1] if len(parts) > 1 else None
    with ThreadPoolExecutor(max_workers=max(1, min(streams, len(parts)))) as pool:
        futures: list[Future[None]] = [pool.submit(run, 0)]
        try:
            started.wait()
            first_failed = futures[0].done() and futures[0].exception() is not None
            if not first_failed and not whole.is_set():
                for index in range(1, len(parts)):
                    pins[index] = _pin_copy(pin)  # now with the identity the first answer gave
                    futures.append(pool.submit(run, index))
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            failed = [f for f in futures if f.done() and f.exception() is not None]
            if failed or cancel.is_set():
                cancel.set()
                for future in futures:
                    future.cancel()
        wait(futures)
    pin.whole_stop = None  # a request of this call only
    errors = [e for f in futures if not f.cancelled() and (e := f.exception()) is not None]
    real = [e for e in errors if not isinstance(e, _Cancelled)]
    changed = [e for e in real if isinstance(e, ObjectChangedError)]
    if changed or real:
        raise (changed or real)[0]
    if errors or cancel.is_set():
        raise _Cancelled
    for other in pins[1:]:
        pin.check(other.identity, path)
        pin.checksums.update({k: v for k, v in other.checksums.items() if k not in pin.checksums})
        pin.hints.update({k: v for k, v in other.hints.items() if k not in pin.hints})


class _Ordered:
    """The parts' chunks, handed out in object order; parts behind the front buffer `read_ahead`."""

    def __init__(self, count: int, read_ahead: int, cancel: threading.Event) -> None:
        self.cond = threading.Condition()
        self.buffers: list[deque[bytes]] = [deque() for _ in range(count)]
        self.sizes = [0] * count
        self.finished = [False] * count
        self.front = 0
        self.read_ahead = read_ahead
        self.cancel = cancel
        self.error: BaseException | None = None
        self.over = False

    def chunk(self, index: int, offset: int, data: bytes) -> None:
        with self.cond:
            while index != self.front and self.sizes[index] >= self.read_ahead and not self.cancel.is_set():
                self.cond.wait(_POLL)  # `fetch_parts` sets `cancel` without this condition's lock
            if self.cancel.is_set():
                raise _Cancelled
            self.buffers[index].append(data)
            self.sizes[index] += len(data)
            self.cond.notify_all()

    def done(self, index: int) -> None:
        with self.cond:
            self.finished[index] = True
            self.cond.notify_all()

    def end(self, error: BaseException | None) -> None:
        with self.cond:
            self.error, self.over = error, True
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.cancel.set()
            self.cond.notify_all()

    def take(self) -> bytes | None:
        """The next chunk in order, None at the end; raises the fetch's error."""
        with self.cond:
            while True:
                if self.error is not None:
                    raise self.error
                if self.front >= len(self.buffers):
                    return None
                if self.buffers[self.front]:
                    data = self.buffers[self.front].popleft()
                    self.sizes[self.front] -= len(data)
                    return data
                if self.finished[self.front]:
                    self.front += 1
                    self.cond.notify_all()
                    continue
                if self.over:
                    raise RemoteError("the parts of the object ended before its last byte")
                self.cond.wait()


def ordered_stream(
    remote: Remote,
    path: str,
    parts: list[Span],
    pin: Pin,
    *,
    streams: int,
    read_ahead: int = READ_AHEAD,
) -> Iterator[bytes]:
    """The bytes of `parts` (consecutive spans) of `path`, in order, fetched on up to `streams`
    threads with at most `read_ahead` bytes buffered per part behind the front. Errors as
    `fetch_parts`; closing the iterator early stops and joins the part threads."""
    cancel = threading.Event()
    ordered = _Ordered(len(parts), read_ahead, cancel)

    def fetch() -> None:
        try:
            fetch_parts(remote, path, parts, pin, streams=streams, sink=ordered, cancel=cancel)
        except BaseException as exc:  # handed to the consumer, which raises it
            ordered.end(exc)
        else:
            ordered.end(None)

    thread = threading.Thread(target=fetch, name=f"parts {path}", daemon=True)
    thread.start()
    try:
        while (data := ordered.take()) is not None:
            yield data
    finally:
        ordered.stop()
        thread.join()
