"""Fault injection and request logs shared by the test servers.

A test arms faults on a server (`server.faults.status(503, times=3)`, `.drop(after=1000)`, ...) and
afterwards reads `server.log` to assert what the client actually did (a resume used Range, no
request was made, the Authorization header was sent). Each fault matches by method and path glob
and fires a bounded number of times; at most one fault applies per request.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal[
    "status",
    "drop",
    "truncate",
    "short",
    "corrupt",
    "delay",
    "stall",
    "norange",
    "partial",
    "early",
    "late",
    "nocontentrange",
    "multipart",
    "chunked",
    "unframed",
]


@dataclass
class Fault:
    """One armed fault. `times=None` fires forever."""

    kind: Kind
    path: str = "*"
    method: str | None = "GET"
    times: int | None = 1
    status: int = 503
    after: int = 0
    """Body bytes sent before the fault (drop, truncate, short, stall, unframed), bytes in a partial
    answer (partial), or how far a range is moved (early, late)."""
    seconds: float = 0.0
    """Sleep (delay: before responding; stall: after `after` bytes)."""
    retry_after: float | None = None
    skip: int = 0
    """Matching requests let through before the fault fires (e.g. the first of an object's parts)."""
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        if not fnmatch.fnmatchcase(path, self.path):
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        return True


class Faults:
    """The faults armed on one server (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching this request, counted as fired."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.fired += 1
                    return fault
        return None

    # Convenience constructors; `path` is a glob on the URL path (no query), e.g. "/bucket/*.tar.zst".

    def status(
        self, code: int = 503, times: int | None = 1, path: str = "*", method: str | None = "GET",
        retry_after: float | None = None,
    ) -> Fault:  # fmt: skip
        """Answer `code` (e.g. a burst of 5xx or 429) instead of the real response."""
        return self.add(Fault("status", path, method, times, status=code, retry_after=retry_after))

    def drop(self, after: int, times: int | None = 1, path: str = "*", method: str | None = "GET") -> Fault:
        """Send the headers and `after` body bytes, then reset the connection (RST)."""
        return self.add(Fault("drop", path, method, times, after=after))

    def truncate(
        self, after: int, times: int | None = 1, path: str = "*", method: str | None = "GET"
    ) -> Fault:
        """Announce the full Content-Length, send `after` bytes, then close cleanly (FIN)."""
        return self.add(Fault("truncate", path, method, times, after=after))

    def short(self, after: int, times: int | None = 1, path: str = "*", method: str | None = "GET") -> Fault:
        """Lie with Content-Length = `after` (Content-Range stays honest) and keep the connection."""
        return self.add(Fault("short", path, method, times, after=after))

    def corrupt(self, times: int | None = 1, path: str = "*", method: str | None = "GET") -> Fault:
        """Flip one byte in the middle of the body (same length: only a digest notices)."""
        return self.add(Fault("corrupt", path, method, times))

    def delay(
        self, seconds: float, times: int | None = 1, path: str = "*", method: str | None = "GET"
    ) -> Fault:
        """Sleep before answering (latency)."""
        return self.add(Fault("delay", path, method, times, seconds=seconds))

    def stall(
        self,
        seconds: float,
        after: int = 0,
        times: int | None = 1,
        path: str = "*",
        method: str | None = "GET",
    ) -> Fault:
        """Send `after` body bytes, then go silent for `seconds` (a client read timeout should fire)."""
        return self.add(Fault("stall", path, method, times, after=after, seconds=seconds))

    def norange(self, times: int | None = 1, path: str = "*", method: str | None = "GET") -> Fault:
        """Ignore the Range header and send the whole file with 200, like servers without Range support."""
        return self.add(Fault("norange", path, method, times))

    # The legal (or tolerated) ways to answer a Range request other than with exactly what was asked.

    def partial(self, size: int, times: int | None = 1, path: str = "*", method: str | None = "GET") -> Fault:
        """Answer 206 with only the first `size` bytes of the asked range, Content-Range honest about
        them and about the full length (a 200 becomes such a 206 too)."""
        return self.add(Fault("partial", path, method, times, after=size))

    def early(self, by: int, times: int | None = 1, path: str = "*", method: str | None = "GET") -> Fault:
        """Answer 206 with a range starting `by` bytes before the one asked (also through the proxy)."""
        return self.add(Fault("early", path, method, times, after=by))

    def late(self, by: int, times: int | None = 1, path: str = "*", method: str | None = "GET") -> Fault:
        """Answer 206 with a range starting `by` bytes after the one asked (also through the proxy)."""
        return self.add(Fault("late", path, method, times, after=by))

    def nocontentrange(self, times: int | None = 1, path: str = "*", method: str | None = "GET") -> Fault:
        """Answer 206 without a Content-Range header (the bytes are the ones asked)."""
        return self.add(Fault("nocontentrange", path, method, times))

    def multipart(self, times: int | None = 1, path: str = "*", method: str | None = "GET") -> Fault:
        """Answer a single range as multipart/byteranges with one part (not allowed, but seen)."""
        return self.add(Fault("multipart", path, method, times))

    def chunked(self, times: int | None = 1, path: str = "*", method: str | None = "GET") -> Fault:
        """Send the body with Transfer-Encoding: chunked and no Content-Length."""
        return self.add(Fault("chunked", path, method, times))

    def unframed(
        self, after: int, times: int | None = 1, path: str = "*", method: str | None = "GET"
    ) -> Fault:
        """No Content-Length and no chunking (the end is the connection's close): send `after` bytes,
        then close, so the client cannot tell a cut from the end."""
        return self.add(Fault("unframed", path, method, times, after=after))


@dataclass(frozen=True)
class Request:
    """One request as the server saw it. Header names are lower-case."""

    method: str
    path: str
    query: str
    headers: dict[str, str] = field(hash=False)
    status: int = 0
    fault: str | None = None
    peer: int = 0
    """Client port: equal ports mean one reused (keep-alive) connection."""
    began: float = 0.0
    """`time.monotonic()` when the request line was read."""
    answered: float = 0.0
    """`time.monotonic()` when the answer's status was decided (after a `delay` fault's sleep)."""
    sent: int = 0
    """Body bytes of the answer (0 for HEAD): what the client could read; a fault that cuts the body
    (drop, truncate, short, unframed) counts the bytes before the cut."""

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


class RequestLog:
    """Requests a server answered, in order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Request] = []

    def append(self, req: Request) -> None:
        with self._lock:
            self._items.append(req)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def all(self) -> list[Request]:
        with self._lock:
            return list(self._items)

    def find(self, path: str = "*", method: str | None = None) -> list[Request]:
        """Requests whose path matches the glob (and method, if given)."""
        return [
            r
            for r in self.all()
            if (method is None or r.method == method) and fnmatch.fnmatchcase(r.path, path)
        ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def most_at_once(requests: list[Request]) -> int:
    """Pure: the largest number of `requests` being handled at one moment (overlapping
    [began, answered] intervals)."""
    edges = sorted([(r.began, 1) for r in requests] + [(r.answered, -1) for r in requests])
    best = current = 0
    for _at, step in edges:
        current += step
        best = max(best, current)
    return best
