"""Plain HTTP(S) remotes (e.g. a public R2 bucket URL), and the Range-resuming fetcher HF reuses.

One httpx Client per remote keeps connections alive across the many archive requests of an
install. Bodies are fetched with Range requests so a dropped connection resumes where it stopped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from dscache.remotes.base import NotFoundError, RemoteError, RemoteFile
from dscache.remotes.retry import (
    TRANSIENT_STATUS,
    Body,
    RetryPolicy,
    TransientError,
    check_rel_path,
    resumable_stream,
)

if TYPE_CHECKING:
    import httpx

_CONTENT_RANGE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED = re.compile(r"^bytes\s+\*/(\d+)$")


def display_url(url: str) -> str:
    """`url` without userinfo, query or fragment: safe to log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/")


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare, let the backoff decide


class HttpFetcher:
    """Range GETs over one keep-alive httpx Client, with resume and retries per `RetryPolicy`."""

    def __init__(
        self,
        policy: RetryPolicy,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str | None] = (),
        if_match: bool = True,
        plain_http: bool = False,
    ) -> None:
        """`if_match=False` where content is immutable anyway (HF at a commit) and redirects make
        validators unreliable. `plain_http`: TLS is only needed if a redirect leads to https, so the
        system trust store (~20 ms) stands in for httpx's certifi bundle (~80 ms of start-up)."""
        import ssl

        import httpx

        self.policy = policy
        self.if_match = if_match
        self.secrets = tuple(secrets)
        self._client = httpx.Client(
            timeout=httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout),
            follow_redirects=True,  # HF resolve -> CDN; httpx drops Authorization across origins
            headers={"Accept-Encoding": "identity", **(headers or {})},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            verify=ssl.create_default_context() if plain_http else True,
        )

    def close(self) -> None:
        self._client.close()

    def _check(self, resp: httpx.Response, what: str) -> None:
        code = resp.status_code
        if code < 400:
            return
        resp.close()
        if code in (404, 410):
            raise NotFoundError(f"{what}: not found (HTTP {code})")
        if code in TRANSIENT_STATUS:
            raise TransientError(f"HTTP {code}", _retry_after(resp.headers.get("retry-after")))
        if code in (401, 403):
            raise RemoteError(f"{what}: access denied (HTTP {code}); check the credentials")
        raise RemoteError(f"{what}: HTTP {code}")

    def open(self, url: str, start: int, stop: int | None, what: str, if_match: str | None = None) -> Body:
        """One GET of bytes [start, stop); the Body says which bytes the server actually sends."""
        # Always ranged, even from 0: a 206's Content-Range states the true size, so a body cut short
        # behind a lying Content-Length is caught instead of passing as the whole file.
        headers = {"Range": f"bytes={start}-{'' if stop is None else stop - 1}"}
        if if_match:
            headers["If-Match"] = if_match
        resp = self._client.send(self._client.build_request("GET", url, headers=headers), stream=True)
        if resp.status_code == 412 and if_match:
            resp.close()
            raise RemoteError(f"{what}: the file changed on the server while it was being downloaded")
        if resp.status_code == 416:
            m = _UNSATISFIED.match(resp.headers.get("content-range", ""))
            resp.close()
            if m and stop is None and int(m.group(1)) == start:
                return Body(iter(()), start, start)  # already at the end
            raise RemoteError(
                f"{what}: byte range {start}-{'' if stop is None else stop - 1} not satisfiable"
            )
        self._check(resp, what)
        length = resp.headers.get("content-length")
        body_stop: int | None
        if resp.status_code == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("content-range", ""))
            if not m:
                resp.close()
                raise RemoteError(f"{what}: partial response without a valid Content-Range")
            first, last = int(m.group(1)), int(m.group(2))
            body_start, body_stop = first, last + 1
        else:
            body_start, body_stop = 0, int(length) if length is not None else None
        etag = resp.headers.get("etag")
        # No chunk_size: bytes are yielded as they arrive, so a drop loses nothing already received.
        return Body(resp.iter_raw(), body_start, body_stop, resp.close, etag)

    def stream(self, url: str, offset: int, length: int | None, what: str) -> Iterator[bytes]:
        """Resumes carry If-Match on the first strong ETag: a file replaced mid-download fails, never
        splices two versions."""
        etag: str | None = None

        def open_at(start: int, stop: int | None) -> Body:
            nonlocal etag
            body = self.open(url, start, stop, what, if_match=etag)
            if self.if_match and etag is None and body.etag and not body.etag.startswith("W/"):
                etag = body.etag
            return body

        return resumable_stream(open_at, offset, length, self.policy, what, secrets=self.secrets)

    def read(self, url: str, what: str) -> bytes:
        return b"".join(self.stream(url, 0, None, what))


class HttpRemote:
    """Read-only remote under an http(s) base URL. Listing is impossible over plain HTTP."""

    def __init__(self, base_url: str, policy: RetryPolicy | None = None) -> None:
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise RemoteError(f"not an http(s) URL: {display_url(base_url)}")
        self._base = base_url.rstrip("/")
        self._display = display_url(self._base)
        plain = urlsplit(base_url).scheme == "http"
        self._fetch = HttpFetcher(policy or RetryPolicy.from_env(), plain_http=plain)

    @property
    def url(self) -> str:
        return self._display

    def _url(self, path: str) -> tuple[str, str]:
        check_rel_path(path)
        return f"{self._base}/{quote(path)}", f"{self._display}/{path}"

    def resolve_revision(self) -> str | None:
        return None

    def read_bytes(self, path: str) -> bytes:
        url, what = self._url(path)
        return self._fetch.read(url, what)

    def stream(self, path: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        url, what = self._url(path)
        return self._fetch.stream(url, offset, length, what)

    def list_files(self, prefix: str) -> list[RemoteFile]:
        raise RemoteError(f"{self._display}: plain HTTP cannot list files; use a manifest or another remote")

    def put_file(self, path: str, local: Path) -> None:
        raise RemoteError(f"{self._display}: plain HTTP remotes are read-only")

    def close(self) -> None:
        self._fetch.close()
