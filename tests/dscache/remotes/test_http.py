"""HttpRemote against a real Range-capable HTTP(S) server on 127.0.0.1, with injected faults,
redirects across hosts and a proxy."""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dscache.remotes.base import (
    Identity,
    NotFoundError,
    ObjectChangedError,
    Pin,
    RemoteError,
    UnpinnedResumeError,
)
from dscache.remotes.http import HttpFetcher, HttpRemote
from dscache.remotes.retry import RetryPolicy
from tests.servers.files import FileServer
from tests.servers.httpbase import Handler, ServerBase

DATA = os.urandom(1_500_000)
PATH = "mujoco/objects/thor/20250101/part-1.tar.zst"


class _RedirectHandler(Handler):
    def do_GET(self) -> None:
        self.send(302, {"Location": self.owner.target + self.path})


class Redirector(ServerBase):
    """Answers every GET with a 302 to the same path under `target` (by default itself, forever)."""

    handler = _RedirectHandler

    def __init__(self, target: str | None = None) -> None:
        super().__init__()
        self.target = target or self.url

    def start(self) -> Redirector:
        super().start()
        return self


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[FileServer, Path]]:
    """A FileServer speaking TLS with a certificate for 127.0.0.1, and the CA that signed it."""
    from dscache_operator.devcerts import generate

    certs = generate(tmp_path, "127.0.0.1")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.cert, certs.key)
    server = FileServer(tmp_path / "www")
    server._server.socket = ctx.wrap_socket(server._server.socket, server_side=True)
    with server:
        yield server, certs.ca


@pytest.fixture
def remote(http_server: FileServer) -> HttpRemote:
    http_server.put(PATH, DATA)
    return HttpRemote(http_server.url + "/")


def test_reads_whole_files_and_ranges(remote: HttpRemote) -> None:
    assert remote.read_bytes(PATH) == DATA
    assert b"".join(remote.stream(PATH, 1000, 5000)) == DATA[1000:6000]
    assert b"".join(remote.stream(PATH, len(DATA) - 10)) == DATA[-10:]
    assert b"".join(remote.stream(PATH, 5, 0)) == b""


def test_connection_is_reused(remote: HttpRemote, http_server: FileServer) -> None:
    for _ in range(3):
        remote.read_bytes(PATH)
    assert len({r.peer for r in http_server.log.all()}) == 1


def test_5xx_burst_is_survived(remote: HttpRemote, http_server: FileServer) -> None:
    http_server.faults.status(503, times=3)
    assert remote.read_bytes(PATH) == DATA
    assert [r.status for r in http_server.log.all()] == [503, 503, 503, 206]


def test_429_with_retry_after_is_survived(remote: HttpRemote, http_server: FileServer) -> None:
    http_server.faults.status(429, times=1, retry_after=0.01)
    assert remote.read_bytes(PATH) == DATA


def test_dropped_connections_are_survived_with_identical_bytes(
    remote: HttpRemote, http_server: FileServer
) -> None:
    http_server.faults.drop(after=300_000, times=2)
    assert b"".join(remote.stream(PATH)) == DATA
    assert [r.fault for r in http_server.log.all()] == ["drop", "drop", None]


def test_cut_body_resumes_at_the_byte_reached(remote: HttpRemote, http_server: FileServer) -> None:
    # A clean close after 300000 bytes (all delivered): the resume asks for exactly the rest.
    http_server.faults.truncate(after=300_000)
    http_server.faults.truncate(after=200_000)
    assert b"".join(remote.stream(PATH)) == DATA
    ranges = [r.range for r in http_server.log.all()]
    assert ranges == ["bytes=0-", "bytes=300000-1499999", "bytes=500000-1499999"]


def test_cut_inside_a_range_keeps_the_range_end(remote: HttpRemote, http_server: FileServer) -> None:
    http_server.faults.truncate(after=100_000)
    assert b"".join(remote.stream(PATH, 200_000, 800_000)) == DATA[200_000:1_000_000]
    assert http_server.log.all()[-1].range == "bytes=300000-999999"


def test_truncated_body_is_retried_not_accepted(remote: HttpRemote, http_server: FileServer) -> None:
    http_server.faults.truncate(after=1000)
    assert remote.read_bytes(PATH) == DATA
    assert len(http_server.log) == 2


def test_lying_short_content_length_is_detected(remote: HttpRemote, http_server: FileServer) -> None:
    # 206 with an honest Content-Range but a short Content-Length: the missing tail is fetched.
    http_server.faults.short(after=1234)
    assert b"".join(remote.stream(PATH, 10, 100_000)) == DATA[10:100_010]
    assert http_server.log.all()[-1].range == f"bytes={10 + 1234}-100009"


def test_whole_file_behind_a_lying_content_length_is_completed(
    remote: HttpRemote, http_server: FileServer
) -> None:
    http_server.faults.short(after=200_000)
    assert remote.read_bytes(PATH) == DATA
    assert [r.range for r in http_server.log.all()] == ["bytes=0-", "bytes=200000-1499999"]


def test_empty_files(http_server: FileServer) -> None:
    http_server.put("empty.json", b"")
    remote = HttpRemote(http_server.url)
    assert remote.read_bytes("empty.json") == b""


def test_server_ignoring_range_on_resume_still_gives_exact_bytes(
    remote: HttpRemote, http_server: FileServer
) -> None:
    http_server.faults.truncate(after=500_000)
    http_server.faults.norange()
    assert remote.read_bytes(PATH) == DATA
    assert [r.status for r in http_server.log.all()] == [206, 200]


def test_stalled_body_times_out_and_resumes(http_server: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    http_server.put(PATH, DATA)
    monkeypatch.setenv("DSCACHE_READ_TIMEOUT", "0.3")
    remote = HttpRemote(http_server.url)
    http_server.faults.stall(seconds=2, after=200_000)
    assert remote.read_bytes(PATH) == DATA
    assert http_server.log.all()[-1].range is not None


def test_persistent_failure_gives_up_after_bounded_attempts(
    remote: HttpRemote, http_server: FileServer
) -> None:
    http_server.faults.status(500, times=None)
    with pytest.raises(RemoteError, match=r"HTTP 500.*gave up after 5 attempt"):
        remote.read_bytes(PATH)
    assert len(http_server.log) == 5  # DSCACHE_RETRY_ATTEMPTS in tests/conftest.py


def test_deadline_bounds_total_time(http_server: FileServer) -> None:
    http_server.put(PATH, DATA)
    policy = RetryPolicy(attempts=1000, base_delay=0.05, max_delay=0.05, deadline=0.3)
    remote = HttpRemote(http_server.url, policy)
    http_server.faults.status(503, times=None)
    with pytest.raises(RemoteError, match="gave up"):
        remote.read_bytes(PATH)
    assert 2 <= len(http_server.log) < 40


def test_missing_file_is_not_found_without_retries(remote: HttpRemote, http_server: FileServer) -> None:
    with pytest.raises(NotFoundError):
        remote.read_bytes("nope/missing.json")
    assert len(http_server.log) == 1


def test_range_past_the_end_fails_cleanly(remote: HttpRemote) -> None:
    with pytest.raises(RemoteError):
        b"".join(remote.stream(PATH, len(DATA) - 10, 100))


def test_file_replaced_mid_download_fails_instead_of_splicing(
    remote: HttpRemote, http_server: FileServer
) -> None:
    http_server.faults.truncate(after=400_000)
    chunks = remote.stream(PATH)
    first = next(chunks)
    assert first
    (http_server.root / PATH).write_bytes(os.urandom(len(DATA)))  # new content, new ETag
    with pytest.raises(RemoteError, match="changed"):
        b"".join(chunks)


def test_parallel_streams_share_one_remote(remote: HttpRemote, http_server: FileServer) -> None:
    http_server.faults.drop(after=50_000, times=4)
    ok: dict[int, bool] = {}

    def fetch(i: int) -> None:
        ok[i] = (
            b"".join(remote.stream(PATH, i * 100_000, 300_000)) == DATA[i * 100_000 : i * 100_000 + 300_000]
        )

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ok == {0: True, 1: True, 2: True, 3: True}
    assert sum(r.fault == "drop" for r in http_server.log.all()) == 4


def test_credentials_in_the_url_never_reach_messages(http_server: FileServer) -> None:
    remote = HttpRemote(f"http://user:s3cr3tpass@127.0.0.1:{http_server.port}/base")
    assert "s3cr3tpass" not in remote.url
    with pytest.raises(NotFoundError) as err:
        remote.read_bytes("x.json")
    assert "s3cr3tpass" not in str(err.value)
    assert http_server.log.all()[0].headers["authorization"].startswith("Basic ")


def test_is_read_only_and_cannot_list(remote: HttpRemote, tmp_path: Path) -> None:
    with pytest.raises(RemoteError, match="cannot list"):
        remote.list_files("mujoco")
    with pytest.raises(RemoteError, match="read-only"):
        remote.put_file("x", tmp_path)


def test_unsafe_paths_are_rejected_before_any_request(remote: HttpRemote, http_server: FileServer) -> None:
    for bad in ("../etc/passwd", "/abs", "a//b", "a/./b", ""):
        with pytest.raises(RemoteError, match="unsafe"):
            remote.read_bytes(bad)
    assert len(http_server.log) == 0


def test_chunks_are_handed_over_as_they_arrive(remote: HttpRemote, http_server: FileServer) -> None:
    # The server sends 100 kB and then stalls: what arrived is yielded now, not after the stall.
    http_server.faults.stall(seconds=1.5, after=100_000)
    chunks = remote.stream(PATH)
    started = time.monotonic()
    first = next(chunks)
    assert time.monotonic() - started < 1.0 and first == DATA[: len(first)]
    assert first + b"".join(chunks) == DATA
    assert len(http_server.log) == 1


def test_credentials_are_not_forwarded_to_another_host(http_server: FileServer) -> None:
    # 127.0.0.1 redirects to localhost: another host, which must not see the origin's credentials.
    http_server.put(PATH, DATA)
    secret = {"Authorization": "Bearer hf_NotForTheCdn0000000000", "Cookie": "session=s3cr3t"}
    with Redirector(f"http://localhost:{http_server.port}") as origin:
        fetcher = HttpFetcher(RetryPolicy(), headers=secret)
        url = f"{origin.url}/{PATH}"
        assert b"".join(fetcher.stream(url, 10, 1000, "x")) == DATA[10:1010]
        basic = HttpRemote(f"http://user:s3cr3tpass@127.0.0.1:{origin.port}")
        assert basic.read_bytes(PATH) == DATA
    first, second = origin.log.all()
    assert first.headers["authorization"] == secret["Authorization"] and first.headers["cookie"]
    assert second.headers["authorization"].startswith("Basic ")
    served = http_server.log.all()
    assert [r.headers["host"].split(":")[0] for r in served] == ["localhost", "localhost"]
    assert served[0].range == "bytes=10-1009"  # the Range survives the redirect
    assert all("authorization" not in r.headers and "cookie" not in r.headers for r in served)


def test_redirect_loops_fail_without_retries() -> None:
    with Redirector() as loop:
        remote = HttpRemote(loop.url)
        with pytest.raises(RemoteError, match="too many redirects") as err:
            remote.read_bytes("a.json")
        assert len(loop.log) == 11  # the request and 10 redirects, once
    assert "gave up" not in str(err.value)


def test_connection_refused_is_retried_then_reported(http_server: FileServer) -> None:
    url = http_server.url
    http_server.stop()
    remote = HttpRemote(url)
    with pytest.raises(RemoteError, match=r"NewConnectionError.*gave up after 5 attempt"):
        remote.read_bytes("a.json")


def test_proxy_from_the_environment(http_server: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The file server doubles as a forward proxy: it serves the path of the absolute URL it is asked.
    http_server.put(PATH, DATA)
    monkeypatch.setenv("HTTP_PROXY", f"127.0.0.1:{http_server.port}")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert HttpRemote("http://dscache-origin.invalid").read_bytes(PATH) == DATA
    assert http_server.log.all()[0].headers["host"] == "dscache-origin.invalid"
    with FileServer(http_server.root.parent / "other") as direct:
        direct.put(PATH, b"direct")
        monkeypatch.setenv("NO_PROXY", f"localhost, .example.org,127.0.0.1:{direct.port}")
        assert HttpRemote(direct.url).read_bytes(PATH) == b"direct"
        assert len(direct.log) == 1 and len(http_server.log) == 1


def test_https_uses_the_system_trust_store_and_one_tls_context(
    https_server: tuple[FileServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca = https_server
    server.put(PATH, DATA)
    url = f"https://127.0.0.1:{server.port}"
    with pytest.raises(RemoteError, match="CERTIFICATE_VERIFY_FAILED") as rejected:
        HttpRemote(url, RetryPolicy(attempts=5)).read_bytes(PATH)  # an unknown CA: no retries
    assert "gave up" not in str(rejected.value)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # OpenSSL's default trust store is now the CA
    made: list[type] = []
    new = ssl.SSLContext.__new__

    def counting(cls: type[ssl.SSLContext], *args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(cls)
        return new(cls, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "__new__", counting)
    remote = HttpRemote(url)
    assert not made  # nothing is built before a request goes to https
    held = remote.stream(PATH)
    first = next(held)  # keeps its connection busy: the threads need others
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(
            b"".join(remote.stream(PATH, i * 1000, 1000)) == DATA[i * 1000 : (i + 1) * 1000]
        ))
        for i in range(4)
    ]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert first + b"".join(held) == DATA
    assert results == [True] * 4 and len(made) == 1
    assert len({r.peer for r in server.log.all()}) >= 2


# --- The legal answers to a Range request, and downloads pinned to one object --------------------


def test_a_short_206_is_continued_not_taken_for_the_end(remote: HttpRemote, http_server: FileServer) -> None:
    # `Range: bytes=0-` answered with 64 KiB and `Content-Range: bytes 0-65535/1500000`.
    http_server.faults.partial(64 << 10, times=3)
    assert remote.read_bytes(PATH) == DATA
    assert [r.range for r in http_server.log.all()] == [
        "bytes=0-",
        "bytes=65536-1499999",
        "bytes=131072-1499999",
        "bytes=196608-1499999",
    ]


def test_a_short_206_inside_a_range_is_continued(remote: HttpRemote, http_server: FileServer) -> None:
    http_server.faults.partial(1000)
    assert b"".join(remote.stream(PATH, 5000, 20_000)) == DATA[5000:25_000]
    assert [r.range for r in http_server.log.all()] == ["bytes=5000-24999", "bytes=6000-24999"]


def test_a_206_starting_earlier_than_asked_is_skipped_into(
    remote: HttpRemote, http_server: FileServer
) -> None:
    http_server.faults.early(by=4096)
    assert b"".join(remote.stream(PATH, 10_000, 5000)) == DATA[10_000:15_000]
    assert len(http_server.log) == 1


def test_a_206_starting_later_than_asked_falls_back_to_the_whole_body(
    remote: HttpRemote, http_server: FileServer
) -> None:
    http_server.faults.late(by=4096)
    assert b"".join(remote.stream(PATH, 10_000, 5000)) == DATA[10_000:15_000]
    assert [(r.range, r.status) for r in http_server.log.all()] == [("bytes=10000-14999", 206), (None, 200)]


def test_a_206_without_content_range_falls_back_to_the_whole_body(
    remote: HttpRemote, http_server: FileServer
) -> None:
    http_server.faults.nocontentrange()
    assert b"".join(remote.stream(PATH, 1000, 2000)) == DATA[1000:3000]
    assert [r.range for r in http_server.log.all()] == ["bytes=1000-2999", None]


def test_a_multipart_byteranges_answer_is_not_read_as_data(
    remote: HttpRemote, http_server: FileServer
) -> None:
    http_server.faults.multipart()
    assert remote.read_bytes(PATH) == DATA
    assert [r.range for r in http_server.log.all()] == ["bytes=0-", None]
    assert all("," not in (r.range or "") for r in http_server.log.all())  # never asks for several


def test_a_200_ignoring_the_range_is_skipped_to_the_offset(
    remote: HttpRemote, http_server: FileServer
) -> None:
    http_server.faults.norange()
    assert b"".join(remote.stream(PATH, 700_000, 1000)) == DATA[700_000:701_000]


def test_chunked_bodies_without_content_length(remote: HttpRemote, http_server: FileServer) -> None:
    http_server.faults.chunked(times=2)
    assert remote.read_bytes(PATH) == DATA
    http_server.faults.chunked()
    http_server.faults.norange()  # a chunked 200 to a resume is skipped into as well
    assert b"".join(remote.stream(PATH, 1_000_000)) == DATA[1_000_000:]


def test_a_body_without_length_cut_short_is_completed_from_the_pinned_size(
    remote: HttpRemote, http_server: FileServer
) -> None:
    # Neither Content-Length nor chunking: a close after 300000 bytes looks like the end, except that
    # the size is known from a listing or manifest (the pin).
    http_server.faults.unframed(after=300_000)
    http_server.faults.norange()  # ...and the Range was ignored
    assert b"".join(remote.stream(PATH, pin=Pin(Identity(size=len(DATA))))) == DATA
    assert len(http_server.log) == 2 and http_server.log.all()[1].range == "bytes=300000-1499999"


def test_416_at_the_end_is_the_end(remote: HttpRemote, http_server: FileServer) -> None:
    assert b"".join(remote.stream(PATH, len(DATA))) == b""
    assert [r.status for r in http_server.log.all()] == [416]


def test_a_total_other_than_the_expected_size_is_another_object(
    remote: HttpRemote, http_server: FileServer
) -> None:
    chunks = remote.stream(PATH, pin=Pin(Identity(size=len(DATA) + 1)))
    with pytest.raises(ObjectChangedError, match=f"size {len(DATA) + 1} -> {len(DATA)}"):
        next(chunks)
    assert len(http_server.log) == 1


def test_the_first_request_is_conditional_on_a_known_object(
    remote: HttpRemote, http_server: FileServer
) -> None:
    pin = Pin()
    assert remote.read_bytes(PATH) == DATA
    assert b"".join(remote.stream(PATH, pin=pin)) == DATA
    etag = pin.identity.etag
    assert etag and pin.identity.size == len(DATA) and pin.identity.last_modified
    assert http_server.log.all()[-1].headers.get("if-match") is None  # nothing known yet
    assert b"".join(remote.stream(PATH, 10, 10, pin=pin)) == DATA[10:20]
    assert http_server.log.all()[-1].headers["if-match"] == etag
    (http_server.root / PATH).write_bytes(os.urandom(len(DATA)))
    with pytest.raises(ObjectChangedError, match="changed"):
        b"".join(remote.stream(PATH, pin=pin))
    assert http_server.log.all()[-1].status == 412


def test_a_cut_download_without_validators_is_not_resumed(tmp_path: Path) -> None:
    # No ETag, no Last-Modified: nothing can show that a resumed request reads the same file, so the
    # stream gives up instead of continuing with bytes of what may be another file.
    with FileServer(tmp_path / "bare", validators=False) as server:
        server.put(PATH, DATA)
        server.faults.truncate(after=400_000)
        remote = HttpRemote(server.url)
        chunks = remote.stream(PATH)
        first = next(chunks)
        (server.root / PATH).write_bytes(os.urandom(len(DATA)))
        with pytest.raises(UnpinnedResumeError, match="no ETag or Last-Modified"):
            first + b"".join(chunks)
        assert len(server.log) == 1


def test_a_date_pins_requests_when_there_is_no_etag(http_server: FileServer) -> None:
    http_server.put(PATH, DATA)
    fetcher = HttpFetcher(RetryPolicy(attempts=2))
    dated = Pin(Identity(last_modified=1_700_000_000))
    with pytest.raises(ObjectChangedError, match="last modified 1700000000 -> "):
        b"".join(fetcher.stream(f"{http_server.url}/{PATH}", 0, 100, "x", dated))
    assert http_server.log.all()[-1].headers["if-unmodified-since"] == "Tue, 14 Nov 2023 22:13:20 GMT"


def test_a_small_file_without_validators_is_read_again_from_zero(tmp_path: Path) -> None:
    with FileServer(tmp_path / "bare", validators=False) as server:
        server.put("meta.json", DATA[:200_000])
        server.faults.truncate(after=50_000)
        assert HttpRemote(server.url).read_bytes("meta.json") == DATA[:200_000]
        assert [r.range for r in server.log.all()] == ["bytes=0-", "bytes=0-"]
