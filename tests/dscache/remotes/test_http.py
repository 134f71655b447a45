"""HttpRemote against a real Range-capable HTTP(S) server on 127.0.0.1: what only plain HTTP does
(credentials in the URL, redirects across hosts, proxies, TLS, servers without validators). Reads,
faults, Range answers and pinning are the conformance suite's (test_conformance.py)."""

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


def test_credentials_in_the_url_never_reach_messages(http_server: FileServer) -> None:
    remote = HttpRemote(f"http://user:s3cr3tpass@127.0.0.1:{http_server.port}/base")
    assert "s3cr3tpass" not in remote.url
    with pytest.raises(NotFoundError) as err:
        remote.read_bytes("x.json")
    assert "s3cr3tpass" not in str(err.value)
    assert http_server.log.all()[0].headers["authorization"].startswith("Basic ")


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


# --- Downloads pinned to one object, by servers that send no ETag ---------------------------------


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


@pytest.mark.parametrize("expired", [403, 400])
def test_an_expired_redirect_target_is_asked_for_again_with_the_credentials(
    http_server: FileServer, expired: int
) -> None:
    # The later parts go straight to where the first was redirected (another host: no credentials
    # there); when that place has expired (a signed URL: 403 at S3 and CloudFront, 400 ExpiredToken
    # at GCS), the origin is asked again, with the credentials it needs.
    http_server.put(PATH, DATA)
    with Redirector(http_server.url) as origin:
        remote = HttpRemote(origin.url, authorization=("Bearer tok-123", "tok-123"))
        pin = Pin()
        assert b"".join(remote.stream(PATH, 0, 1000, pin=pin)) == DATA[:1000]
        http_server.faults.status(expired, times=1, path=f"/{PATH}")
        assert b"".join(remote.stream(PATH, 1000, 1000, pin=pin)) == DATA[1000:2000]
        assert [r.headers.get("authorization") for r in origin.log.all()] == ["Bearer tok-123"] * 2
    assert {r.headers.get("authorization") for r in http_server.log.all()} == {None}
    assert [r.status for r in http_server.log.all()] == [206, expired, 206]


@pytest.mark.parametrize("failure", ["gone", "5xx"])
def test_a_redirect_target_that_fails_is_resolved_again_on_retry(
    http_server: FileServer, failure: str
) -> None:
    # The later parts go straight to where the first was redirected; when that place stops answering
    # (its server gone: connections refused, or a 5xx that lasts), the retry asks the origin again,
    # which now redirects to a place that works, instead of spending the retry budget on the failing one.
    http_server.put(PATH, DATA)
    policy = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.01, deadline=5)
    with FileServer(http_server.root) as spare, Redirector(http_server.url) as origin:
        remote = HttpRemote(origin.url, policy)
        pin = Pin()
        assert b"".join(remote.stream(PATH, 0, 1000, pin=pin)) == DATA[:1000]
        if failure == "gone":  # the kept-alive connection is reset, a new one refused
            http_server.faults.drop(0, times=1, path=f"/{PATH}")
            http_server.stop()
        else:
            http_server.faults.status(500, times=None, path=f"/{PATH}")
        origin.target = spare.url
        assert b"".join(remote.stream(PATH, 1000, 1000, pin=pin)) == DATA[1000:2000]
        assert [r.headers.get("range") for r in spare.log.all()] == ["bytes=1000-1999"]
