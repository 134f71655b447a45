"""The retry policy and the resumable stream contract (network behaviour: test_conformance.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dscache.remotes.base import Identity, ObjectChangedError, RemoteError, UnpinnedResumeError
from dscache.remotes.retry import (
    Body,
    OpenAt,
    RetryPolicy,
    TransientError,
    describe,
    is_transient,
    redact,
    resumable_stream,
)

DATA = bytes(range(256)) * 40


def test_policy_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSCACHE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("DSCACHE_READ_TIMEOUT", "2.5")
    policy = RetryPolicy.from_env()
    assert (policy.attempts, policy.read_timeout) == (3, 2.5)
    monkeypatch.setenv("DSCACHE_RETRY_DEADLINE", "soon")
    with pytest.raises(RemoteError, match="DSCACHE_RETRY_DEADLINE"):
        RetryPolicy.from_env()


def test_backoff_is_jittered_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    delays = [policy.backoff(n) for n in range(1, 12) for _ in range(20)]
    assert all(0 <= d <= 4.0 for d in delays) and len(set(delays)) > 10
    assert policy.backoff(1, retry_after=3) >= 3
    assert policy.backoff(1, retry_after=3600) <= 4.0


def test_redact_removes_secrets() -> None:
    text = (
        "GET https://u:pw@cdn.example/x?X-Amz-Signature=abc&Expires=1 failed; "
        "Authorization: Bearer hf_abcdefghijkl; token=zzz mysecret"
    )
    out = redact(text, ["mysecret"])
    for secret in ("pw@", "abc", "hf_abcdefghijkl", "zzz", "mysecret"):
        assert secret not in out


def _cutting_opener(cuts: list[int], calls: list[tuple[int, int | None]]) -> OpenAt:
    """Bodies of one object (one ETag) that honour ranges but end early after `cuts[i]` bytes on the
    i-th open."""

    def open_at(start: int, stop: int | None, ranged: bool) -> Body:
        calls.append((start, stop))
        end = len(DATA) if stop is None else stop
        n = cuts.pop(0) if cuts else end - start

        def chunks() -> Iterator[bytes]:
            for i in range(start, start + n, 300):
                yield DATA[i : min(i + 300, start + n)]

        return Body(chunks(), start, end, identity=Identity(size=len(DATA), etag='"one"'))

    return open_at


def test_short_bodies_resume_exactly_where_they_stopped() -> None:
    calls: list[tuple[int, int | None]] = []
    opener = _cutting_opener([1000, 0, 2500], calls)
    policy = RetryPolicy(attempts=3, base_delay=0, max_delay=0)
    out = b"".join(resumable_stream(opener, 100, 9000, policy, "x"))
    assert out == DATA[100:9100]
    assert calls == [(100, 9100), (1100, 9100), (1100, 9100), (3600, 9100)]


def test_no_progress_exhausts_the_budget() -> None:
    calls: list[tuple[int, int | None]] = []
    opener = _cutting_opener([0] * 10, calls)
    policy = RetryPolicy(attempts=4, base_delay=0, max_delay=0)
    with pytest.raises(RemoteError, match="gave up after 4"):
        b"".join(resumable_stream(opener, 0, None, policy, "x"))
    assert len(calls) == 4


def test_non_transient_errors_are_not_retried() -> None:
    calls = 0

    def open_at(start: int, stop: int | None, ranged: bool) -> Body:
        nonlocal calls
        calls += 1
        raise RemoteError("forbidden")

    with pytest.raises(RemoteError, match="forbidden"):
        b"".join(resumable_stream(open_at, 0, None, RetryPolicy(), "x"))
    assert calls == 1
    assert TransientError("x").retry_after is None


def test_urllib3_transport_failures_are_transient_and_described_safely() -> None:
    from urllib3 import HTTPConnectionPool
    from urllib3.connection import HTTPConnection
    from urllib3.exceptions import (
        ConnectTimeoutError,
        IncompleteRead,
        MaxRetryError,
        NewConnectionError,
        ProtocolError,
        ReadTimeoutError,
        ResponseError,
    )

    pool = HTTPConnectionPool("cdn.example")
    url = "/blob?X-Amz-Signature=abc&Expires=99"
    refused = NewConnectionError(HTTPConnection("cdn.example"), "Failed to establish a new connection")
    transient = [
        refused,
        ConnectTimeoutError("timed out"),
        ReadTimeoutError(pool, url, "Read timed out."),
        ProtocolError("Connection broken", ConnectionResetError(104, "reset")),
        IncompleteRead(100, 900),
        MaxRetryError(pool, url, refused),
    ]
    assert all(is_transient(e) for e in transient)
    for final in (MaxRetryError(pool, url, ResponseError("too many redirects")), ValueError("x")):
        assert not is_transient(final)
    # MaxRetryError's own message names the URL and its query: describe the cause instead.
    text = describe(MaxRetryError(pool, url, refused))
    assert text.startswith("NewConnectionError: ") and "Expires" not in text and "?" not in text


def test_a_rejected_certificate_is_final_while_other_tls_failures_retry() -> None:
    import ssl

    from urllib3 import HTTPSConnectionPool
    from urllib3.exceptions import MaxRetryError, SSLError

    pool = HTTPSConnectionPool("cdn.example")
    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    wrapped = SSLError(verify)
    wrapped.__cause__ = verify
    assert not is_transient(MaxRetryError(pool, "/a", wrapped))  # as urllib3 raises it
    assert not is_transient(verify)
    assert is_transient(MaxRetryError(pool, "/a", SSLError(ssl.SSLError(1, "record layer failure"))))


def _one_object(bodies: list[Body], calls: list[tuple[int, int | None, bool]]) -> OpenAt:
    """An opener answering with the given bodies, in order."""

    def open_at(start: int, stop: int | None, ranged: bool) -> Body:
        calls.append((start, stop, ranged))
        return bodies.pop(0)

    return open_at


def _chunks(start: int, stop: int) -> Iterator[bytes]:
    yield DATA[start:stop]


def test_a_resume_must_be_the_same_object() -> None:
    one, other = Identity(etag='"a"'), Identity(etag='"b"')
    calls: list[tuple[int, int | None, bool]] = []
    bodies = [
        Body(_chunks(0, 1000), 0, len(DATA), identity=one),
        Body(_chunks(1000, 2000), 1000, len(DATA), identity=other),
    ]
    stream = resumable_stream(_one_object(bodies, calls), 0, None, RetryPolicy(base_delay=0), "x")
    assert next(stream) == DATA[:1000]
    with pytest.raises(ObjectChangedError, match='etag "a" -> "b"'):
        next(stream)


def test_without_any_validator_a_cut_stream_is_not_resumed() -> None:
    calls: list[tuple[int, int | None, bool]] = []
    bodies = [Body(_chunks(0, 1000), 0, len(DATA))]
    stream = resumable_stream(_one_object(bodies, calls), 0, None, RetryPolicy(base_delay=0), "x")
    assert next(stream) == DATA[:1000]
    with pytest.raises(UnpinnedResumeError):
        next(stream)
    assert len(calls) == 1  # not even asked


def test_a_short_partial_answer_without_a_total_is_continued_until_416() -> None:
    # `Content-Range: bytes 0-999/*`, then the rest, then 416 at the end (a body of no bytes).
    pinned = Identity(etag='"e"')
    calls: list[tuple[int, int | None, bool]] = []
    bodies = [
        Body(_chunks(0, 1000), 0, 1000, identity=pinned),
        Body(_chunks(1000, len(DATA)), 1000, len(DATA), identity=pinned),
        Body(iter(()), len(DATA), len(DATA), identity=Identity(size=len(DATA))),
    ]
    out = b"".join(resumable_stream(_one_object(bodies, calls), 0, None, RetryPolicy(base_delay=0), "x"))
    assert out == DATA
    assert calls == [(0, None, True), (1000, None, True), (len(DATA), None, True)]
