"""Retries with jittered exponential backoff, and byte streams that survive dropped connections.

Every remote funnels its network calls through `call_with_retry` and its downloads through
`resumable_stream`, so all of them agree on what is transient (5xx, 429, resets, timeouts, bodies
shorter than announced), on how long to insist, and on never handing the consumer a duplicated or
missing byte. The budget (attempts and time) is counted since the last byte of progress: a long
download over a flaky link keeps going as long as it advances, a dead remote fails in bounded time.
"""

from __future__ import annotations

import logging
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from dscache.remotes.base import Identity, ObjectChangedError, Pin, RemoteError, UnpinnedResumeError

log = logging.getLogger("dscache.remotes")
T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 507, 509, 520, 521, 522, 523, 524})
"""HTTP statuses worth retrying: timeouts, throttling and server-side failures."""


class GaveUpError(RemoteError):
    """Transient errors outlived the retry budget: the message ends with how many tries took how long;
    a later run may succeed."""


class TransientError(RemoteError):
    """A failure worth retrying (the remote may succeed next time)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise RemoteError(f"{name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class RetryPolicy:
    """How patient to be with a remote. `from_env()` lets tests and operators tune it."""

    attempts: int = 8
    """Tries per operation without progress (1 = no retry)."""
    base_delay: float = 0.5
    """First backoff cap in seconds; doubles per retry, with full jitter."""
    max_delay: float = 30.0
    """Cap of a single backoff (also caps a server's Retry-After)."""
    deadline: float = 600.0
    """Seconds without progress after which an operation gives up."""
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    """Seconds of silence on an open connection before it counts as dropped."""

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """Defaults overridden by DSCACHE_RETRY_{ATTEMPTS,BASE_DELAY,MAX_DELAY,DEADLINE},
        DSCACHE_{CONNECT,READ}_TIMEOUT."""
        d = cls()
        return cls(
            attempts=max(1, int(_env_float("DSCACHE_RETRY_ATTEMPTS", d.attempts))),
            base_delay=_env_float("DSCACHE_RETRY_BASE_DELAY", d.base_delay),
            max_delay=_env_float("DSCACHE_RETRY_MAX_DELAY", d.max_delay),
            deadline=_env_float("DSCACHE_RETRY_DEADLINE", d.deadline),
            connect_timeout=_env_float("DSCACHE_CONNECT_TIMEOUT", d.connect_timeout),
            read_timeout=_env_float("DSCACHE_READ_TIMEOUT", d.read_timeout),
        )

    def backoff(self, failures: int, retry_after: float | None = None) -> float:
        """Delay before retry number `failures` (1-based): full jitter, at least a bounded Retry-After."""
        cap = min(self.max_delay, self.base_delay * (2 ** (failures - 1)))
        delay = random.uniform(0, cap)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay))
        return delay


@dataclass
class SharedBudget:
    """One retry budget for several concurrent operations on one object (the parts of a download in
    parts): failures counted together, and progress of any of them resets them all."""

    failures: int = 0
    since: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


_SHARED: ContextVar[SharedBudget | None] = ContextVar("dscache_shared_budget", default=None)


@contextmanager
def sharing(budget: SharedBudget) -> Iterator[None]:
    """Within: the retries of this thread count against `budget` (set it in each thread that joins)."""
    token = _SHARED.set(budget)
    try:
        yield
    finally:
        _SHARED.reset(token)


@dataclass
class _Budget:
    """Failures and time since the last progress, against a policy; kept in the thread's
    `SharedBudget` when one is set (`sharing`)."""

    policy: RetryPolicy
    what: str
    failures: int = 0
    since: float = field(default_factory=time.monotonic)
    shared: SharedBudget | None = field(default_factory=_SHARED.get)

    def progress(self) -> None:
        now = time.monotonic()
        self.failures, self.since = 0, now
        if self.shared is not None:  # once per chunk: no lock (a reset racing a failure loses one)
            self.shared.failures, self.shared.since = 0, now

    def failed(self, err: TransientError) -> None:
        """Sleep before the next try, or raise a final RemoteError if the budget is spent."""
        if self.shared is not None:
            with self.shared.lock:
                self.shared.failures += 1
                self.failures, self.since = self.shared.failures, self.shared.since
        else:
            self.failures += 1
        elapsed = time.monotonic() - self.since
        delay = self.policy.backoff(self.failures, err.retry_after)
        if self.failures >= self.policy.attempts or elapsed + delay > self.policy.deadline:
            raise GaveUpError(
                f"{self.what}: {err} (gave up after {self.failures} attempt(s) in {elapsed:.1f}s)"
            ) from None
        log.warning("%s: %s; retry %d in %.2fs", self.what, err, self.failures, delay)
        time.sleep(delay)


# --- classification of library exceptions -------------------------------------------------------

_SECRETISH = re.compile(
    r"(?i)(authorization|x-amz-security-token|x-amz-signature|x-amz-credential|signature|token|"
    r"access_?key|secret|password|sig|key-pair-id|policy)=[^&\s'\"]+"
)
_URL_QUERY = re.compile(r"(https?://[^\s?'\"]+)\?[^\s'\"]*")
_USERINFO = re.compile(r"(https?://)[^/@\s'\"]+@")
_BEARER = re.compile(r"(?i)bearer\s+[^\s'\"]+")
_HF_TOKEN = re.compile(r"hf_[A-Za-z0-9]{8,}")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove known secrets, URL query strings (signed URLs), userinfo and bearer tokens from `text`."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    text = _URL_QUERY.sub(r"\1?<redacted>", text)
    text = _USERINFO.sub(r"\1***@", text)
    text = _BEARER.sub("Bearer ***", text)
    text = _HF_TOKEN.sub("hf_***", text)
    return _SECRETISH.sub(r"\1=***", text)


def _transport_error_types() -> tuple[type[BaseException], ...]:
    """Connection-level error classes of the HTTP stacks already imported (never imports one)."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for mod, names in (
        ("httpx", ("TransportError", "StreamError")),
        ("httpx2", ("TransportError", "StreamError")),
        ("requests", ("ConnectionError", "Timeout", "ChunkedEncodingError")),
        # TimeoutError: urllib3's own (connect and read timeouts, failed connections); SSLError and
        # ProxyError as httpx counts them (ConnectError/ReadError/ProxyError), e.g. a TLS record cut.
        ("urllib3.exceptions", ("ProtocolError", "TimeoutError", "IncompleteRead", "SSLError", "ProxyError")),
        ("http.client", ("IncompleteRead", "RemoteDisconnected")),
        (
            "botocore.exceptions",
            (
                "ConnectionError",
                "HTTPClientError",
                "IncompleteReadError",
                "ResponseStreamingError",
                "ReadTimeoutError",
                "ConnectTimeoutError",
            ),
        ),
    ):
        module = sys.modules.get(mod)
        for name in names:
            cls = getattr(module, name, None) if module is not None else None
            if isinstance(cls, type) and issubclass(cls, BaseException):
                found.append(cls)
    return tuple(found)


def _cause(exc: BaseException) -> BaseException:
    """The error inside a urllib3 MaxRetryError (which names the URL, query string included)."""
    max_retry = getattr(sys.modules.get("urllib3.exceptions"), "MaxRetryError", None)
    reason = getattr(exc, "reason", None) if max_retry is not None and isinstance(exc, max_retry) else None
    return reason if isinstance(reason, BaseException) else exc


def _certificate_rejected(exc: BaseException) -> bool:
    """A server certificate failed verification, anywhere in the chain of wrapped errors: a
    configuration problem (CA bundle, hostname, clock), never worth minutes of retries."""
    ssl = sys.modules.get("ssl")
    if ssl is None:
        return False
    seen: set[int] = set()
    todo = [exc]
    while todo:
        err = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, ssl.SSLCertVerificationError):
            return True
        linked = (err.__cause__, err.__context__, getattr(err, "reason", None), *err.args)
        todo += [x for x in linked if isinstance(x, BaseException)]
    return False


def status_of(exc: BaseException) -> int | None:
    """HTTP status carried by a library exception (httpx/requests `.response`, botocore), if any."""
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    if isinstance(code, int):
        return code
    if isinstance(response, dict):  # botocore ClientError
        meta = response.get("ResponseMetadata", {})
        code = meta.get("HTTPStatusCode") if isinstance(meta, dict) else None
        if isinstance(code, int):
            return code
    return None


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: TransientError, transient HTTP statuses, transport failures."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, RemoteError) or _certificate_rejected(exc):
        return False
    exc = _cause(exc)
    code = status_of(exc)
    if code is not None:
        return code in TRANSIENT_STATUS
    return isinstance(exc, _transport_error_types())


def describe(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """A short, redacted description of a library exception."""
    exc = _cause(exc)
    code = status_of(exc)
    text = str(exc).splitlines()[0] if str(exc) else ""
    head = f"HTTP {code}" if code is not None else type(exc).__name__
    return redact(f"{head}: {text}" if text else head, secrets)[:300]


def as_transient(exc: BaseException, secrets: Iterable[str | None] = ()) -> TransientError:
    return exc if isinstance(exc, TransientError) else TransientError(describe(exc, secrets))


# --- retries ---------------------------------------------------------------------------------------


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    *,
    classify: Callable[[BaseException], bool] = is_transient,
    secrets: Iterable[str | None] = (),
) -> T:
    """Run `fn` until it succeeds, retrying transient failures within the policy's budget.

    Raises RemoteError (with a safe message naming `what`) once the budget is spent; non-transient
    RemoteErrors pass through; other non-transient exceptions propagate unchanged.
    """
    secrets = tuple(secrets)
    budget = _Budget(policy, what)
    while True:
        try:
            return fn()
        except Exception as exc:
            if not classify(exc):
                raise
            budget.failed(as_transient(exc, secrets))


@dataclass
class Body:
    """One response body: its chunks, the absolute byte range they cover, and how to release it."""

    chunks: Iterator[bytes]
    start: int | None
    """Absolute offset of the first chunk (0 when a server ignored the Range header); None for a
    partial answer that does not say which bytes it holds (no Content-Range, multipart/byteranges)."""
    stop: int | None
    """Absolute offset just past the last byte this body announces (Content-Range, Content-Length)."""
    close: Callable[[], None] = lambda: None
    identity: Identity = field(default_factory=Identity)
    """What the response says about the object; `identity.size` is its complete length if stated."""


OpenAt = Callable[[int, int | None, bool], Body]
"""`open_at(start, stop, ranged)`: request bytes [start, stop) (stop None: to the end) of the pinned
object; `ranged=False`: ask for the whole object without a Range header."""


def resumable_stream(
    open_at: OpenAt,
    offset: int,
    length: int | None,
    policy: RetryPolicy,
    what: str,
    *,
    pin: Pin | None = None,
    classify: Callable[[BaseException], bool] = is_transient,
    secrets: Iterable[str | None] = (),
) -> Iterator[bytes]:
    """Yield bytes [offset, offset+length) (or to the end) of ONE object as one continuous stream.

    `open_at` returns a `Body` for each request. Every body's identity is checked against `pin`
    (which the first one completes), so a resume never splices two objects: ObjectChangedError, or
    UnpinnedResumeError when a cut download has nothing to pin a resume to. The end is the requested
    length, else the object's complete length (Content-Range total, a 200's Content-Length, or the
    pinned size), else the end of a body without a stated length. Legal Range answers are all taken:
    a 206 shorter than asked continues from its last byte, a 206 starting earlier is skipped into, a
    200 with the whole object is skipped to the offset, a 416 at the end ends the stream; a partial
    answer that does not say which bytes it holds, or that starts later than asked, makes the
    stream ask for the whole object instead. A body cut short is transient, never success. When the
    answer the first byte comes in is the whole object (`pin.whole_bodies`) and `pin.whole_stop` is
    set, the stream reads on to it: more than `length` bytes, still consecutive from `offset`.
    """
    if length is not None and length < 0:
        raise ValueError("length must be >= 0")
    secrets = tuple(secrets)
    pin = pin if pin is not None else Pin()
    pos = offset
    stop = None if length is None else offset + length
    if stop == pos:
        return
    budget = _Budget(policy, what)
    ranged = True
    while True:
        body: Body | None = None
        end = stop if stop is not None else pin.identity.size
        try:
            if pos > offset and not pin.identity.validated:
                raise UnpinnedResumeError(
                    f"{what}: the download was cut at byte {pos} and the remote sends no ETag or "
                    "Last-Modified that would let it resume the same object"
                )
            opened_at = pos
            body = open_at(pos, end, ranged)
            pin.check(body.identity, what)
            if pos == offset and stop is not None and pin.whole_bodies and pin.whole_stop is not None:
                stop = max(stop, pin.whole_stop)  # the whole object is coming: read on (`Pin.whole_stop`)
            end = stop if stop is not None else pin.identity.size
            size = pin.identity.size
            if end is not None and size is not None and end > size:
                raise RemoteError(f"{what}: bytes {offset}-{end - 1} requested, the file ends at {size}")
            if body.start is None or body.start > pos:
                if not ranged:
                    raise RemoteError(f"{what}: the server's answer does not say which bytes it holds")
                ranged = False  # this server's ranges cannot be relied on: take whole bodies
                continue
            skip = pos - body.start
            for raw in body.chunks:
                chunk = raw
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk = chunk[skip:]
                    skip = 0
                if end is not None and pos + len(chunk) > end:
                    chunk = chunk[: end - pos]
                if chunk:
                    pos += len(chunk)
                    budget.progress()
                    yield chunk
                if end is not None and pos >= end:
                    return  # the server sends more than asked (Range ignored): stop reading
            if end is not None and pos >= end:
                return
            if body.stop is None:
                if end is None:
                    return  # no length stated anywhere: the body's end is the object's end
            elif pos >= body.stop and pos > opened_at:
                continue  # a partial answer shorter than asked, delivered whole: ask for the rest
            raise TransientError(f"body ended early at byte {pos} of {'?' if end is None else end}")
        except Exception as exc:
            if not classify(exc):
                raise
            if end is not None and pos >= end:
                # Every byte was delivered, then the body failed (e.g. an end-of-body check): there is
                # nothing left to re-fetch, and the bytes given out cannot be taken back.
                raise RemoteError(f"{what}: {describe(exc, secrets)} after the last byte") from None
            budget.failed(as_transient(exc, secrets))
        finally:
            if body is not None:
                body.close()


def read_whole(stream: Callable[[Pin], Iterable[bytes]]) -> bytes:
    """A small file, whole. If it changes mid-read or cannot be resumed on the same object
    (ObjectChangedError), it is read once more from zero; a second change propagates."""
    try:
        return b"".join(stream(Pin()))
    except ObjectChangedError:
        return b"".join(stream(Pin()))


def check_rel_path(path: str) -> str:
    """Reject paths that could leave the remote's base: absolute, empty segments, '.', '..', NUL."""
    if not path or path.startswith("/") or "\0" in path or "\\" in path:
        raise RemoteError(f"unsafe remote path {path!r}")
    if any(seg in ("", ".", "..") for seg in path.split("/")):
        raise RemoteError(f"unsafe remote path {path!r}")
    return path
