"""Plain HTTP(S) remotes (e.g. a public R2 bucket URL), and the Range-resuming fetcher HF reuses.

Built on urllib3, not httpx: importing httpx and building its Client cost ~0.15 s of CPU in every
process (each install, each forked worker), a large share of a short install; urllib3 is already
there for botocore, and one TLS context is built on the first https request, then shared by every
connection. One PoolManager per remote keeps connections alive across the many archive requests of
an install. Bodies are fetched with Range requests so a dropped connection resumes where it stopped.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, quote, unquote, urljoin, urlsplit, urlunsplit

from dscache.api.urls import HTTP_FILES, display_url
from dscache.remotes.base import Identity, NotFoundError, ObjectChangedError, Pin, RemoteError, RemoteFile
from dscache.remotes.retry import (
    TRANSIENT_STATUS,
    Body,
    RetryPolicy,
    TransientError,
    check_rel_path,
    describe,
    read_whole,
    resumable_stream,
)

if TYPE_CHECKING:
    import ssl

    from urllib3 import BaseHTTPResponse, PoolManager

_CONTENT_RANGE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED = re.compile(r"^bytes\s+\*/(\d+)$")
_CHUNK = 256 << 10
"""Most bytes one read returns; it returns what has arrived rather than wait for that many."""
_MAX_REDIRECTS = 10
_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})
"""Headers never sent to another host than the one asked (urllib3's own rule on redirects)."""
_KEPT_LOCATION = frozenset({412, 416, 429})
"""4xx answers at a remembered redirect target that are about the request, not the place (the object
changed, the range, a rate limit): every other 4xx means the place expired or refuses us (a signed
URL past its expiry: 403 at S3, CloudFront and Azure, 400 ExpiredToken at GCS), so ask `url` again."""


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare, let the backoff decide


def _env_proxies() -> dict[str, str]:
    """HTTP(S)_PROXY, ALL_PROXY and NO_PROXY, honoured like httpx, huggingface_hub and botocore do."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return {}  # the usual case, without importing urllib.request
    from urllib.request import getproxies_environment

    return {k: v if k == "no" or "://" in v else f"http://{v}" for k, v in getproxies_environment().items()}


def _no_proxy(parts: SplitResult, no_proxy: str) -> bool:
    """Whether NO_PROXY exempts the URL: `*`, or its host (or host:port) or a parent domain listed."""
    hosts = {(parts.hostname or "").lower(), parts.netloc.rpartition("@")[2].lower()}
    for entry in no_proxy.lower().split(","):
        name = entry.strip().lstrip(".")
        if name == "*" or (name and any(h == name or h.endswith(f".{name}") for h in hosts)):
            return True
    return False


def _release(resp: BaseHTTPResponse) -> None:
    """Done with `resp`: a connection with unread body is closed; its pool slot is returned either way."""
    resp.close()
    resp.release_conn()


def _identity(resp: BaseHTTPResponse) -> Identity:
    """What a response says about its object: a strong ETag and the Last-Modified second."""
    etag = resp.headers.get("etag")
    if etag is not None and (etag.startswith("W/") or not etag.strip()):
        etag = None  # a weak validator promises equivalent content, not the same bytes
    modified: int | None = None
    raw = resp.headers.get("last-modified")
    if raw:
        try:
            modified = int(parsedate_to_datetime(raw).timestamp())
        except (TypeError, ValueError):
            modified = None
    return Identity(etag=etag, last_modified=modified)


def _chunks(resp: BaseHTTPResponse) -> Iterator[bytes]:
    # read1, not read(n): read(n) waits for n bytes, so a drop would lose those already received.
    while chunk := resp.read1(_CHUNK):
        yield chunk


class HttpFetcher:
    """Range GETs over keep-alive urllib3 pools, with resume and retries per `RetryPolicy`.

    Thread-safe (HF shares one per repo); never shared across fork (each worker opens its remotes).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str | None] = (),
        if_match: bool = True,
        *,
        auth: Callable[[], Mapping[str, str]] | None = None,
        vouch: Callable[[Mapping[str, str], Pin], Identity] | None = None,
    ) -> None:
        """`if_match=False` where content is immutable anyway (HF at a commit) and redirects make
        conditional requests unreliable: answers are still checked against the pinned identity.

        For object stores: `auth()` gives headers computed per request (bearer tokens that expire);
        `vouch(headers, pin)` reads what a store's own headers (lower-case names) say about the
        object: the Identity it returns completes the answer's (e.g. a GCS generation), and it may
        record the whole object's digests in `pin.checksums`."""
        import urllib3

        self.policy = policy
        self.if_match = if_match
        self._auth = auth
        self._vouch = vouch
        self.secrets = tuple(secrets)
        self._headers = {"Accept-Encoding": "identity", **(headers or {})}  # bytes are hashed as sent
        self._pool_kw: dict[str, Any] = {
            "maxsize": 32,
            "block": False,
            "timeout": urllib3.Timeout(connect=policy.connect_timeout, read=policy.read_timeout),
            # Redirects only (HF resolve -> CDN); every retry is resumable_stream's, within its budget.
            # Its default remove_headers_on_redirect drops Authorization and Cookie at another host.
            "retries": urllib3.Retry(
                total=None, connect=0, read=0, status=0, other=0, redirect=_MAX_REDIRECTS,
                raise_on_status=False, respect_retry_after_header=False,
            ),
        }  # fmt: skip
        self._proxies = _env_proxies()
        self._managers: dict[str | None, PoolManager] = {}  # by proxy URL (None: direct)
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._located: dict[str, str] = {}
        """URL -> where a GET of it was redirected (the Hub's resolve URL -> its signed CDN URL), so
        the later parts of an object go there at once: one request and one first-byte wait per part
        instead of two (huggingface_hub's hf_transfer does the same). Forgotten when that place
        answers as if expired or fails (`_get`)."""

    def close(self) -> None:
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._managers.clear()

    def _manager(self, parts: SplitResult) -> PoolManager:
        """The pool manager for a URL: direct or through the environment's proxy. The first https URL
        builds one TLS context (system trust store) for every later connection."""
        proxy = self._proxies.get(parts.scheme) or self._proxies.get("all")
        if proxy and _no_proxy(parts, self._proxies.get("no", "")):
            proxy = None
        with self._lock:
            if parts.scheme == "https" and self._tls is None:
                from urllib3.util.ssl_ import create_urllib3_context

                self._tls = create_urllib3_context()
                self._tls.load_default_certs()
                for manager in self._managers.values():
                    manager.connection_pool_kw["ssl_context"] = self._tls
            if proxy not in self._managers:
                self._managers[proxy] = self._new_manager(proxy)
            return self._managers[proxy]

    def _new_manager(self, proxy: str | None) -> PoolManager:
        import urllib3

        kw = {**self._pool_kw, "ssl_context": self._tls}
        if proxy is None:
            return urllib3.PoolManager(**kw)
        userinfo = unquote(urlsplit(proxy).netloc.rpartition("@")[0])  # "user:password", if any
        auth = urllib3.make_headers(proxy_basic_auth=userinfo or None)
        return urllib3.ProxyManager(proxy, proxy_headers=auth, **kw)

    def _check(self, resp: BaseHTTPResponse, what: str) -> None:
        code = resp.status
        if code < 400:
            return
        _release(resp)
        if code in (404, 410):
            raise NotFoundError(f"{what}: not found (HTTP {code})")
        if code in TRANSIENT_STATUS:
            raise TransientError(f"HTTP {code}", _retry_after(resp.headers.get("retry-after")))
        if code in (401, 403):
            raise RemoteError(f"{what}: access denied (HTTP {code}); check the credentials")
        raise RemoteError(f"{what}: HTTP {code}")

    def open(
        self, url: str, start: int, stop: int | None, what: str, *, pin: Pin, ranged: bool = True
    ) -> Body:
        """One GET of bytes [start, stop) of the object `pin` names (the whole object if not
        `ranged`); the Body says which bytes the server actually sends and what it says about them."""
        headers = {**self._headers, **(self._auth() if self._auth is not None else {})}
        if ranged:
            # Always ranged, even from 0: a 206's Content-Range states the true size, so a body cut
            # short behind a lying Content-Length is caught instead of passing as the whole file.
            headers["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
        expect = pin.identity
        if self.if_match and expect.etag is not None:
            headers["If-Match"] = expect.etag
        elif self.if_match and expect.last_modified is not None:
            headers["If-Unmodified-Since"] = formatdate(expect.last_modified, usegmt=True)
        resp = self._get(url, headers)
        if resp.status == 412 and (
            "If-Match" in headers or "If-Unmodified-Since" in headers or pin.identity.validated
        ):  # a precondition of ours failed (the URL may hold it: GCS ifGenerationMatch)
            _release(resp)
            raise ObjectChangedError(f"{what}: the file changed on the server while it was being downloaded")
        identity = _identity(resp)
        if self._vouch is not None and resp.status < 300:
            store = {k.lower(): v for k, v in resp.headers.items()}
            identity = identity.merged(self._vouch(store, pin))
        if resp.status == 416:
            m = _UNSATISFIED.match(resp.headers.get("content-range", ""))
            _release(resp)
            if m:
                identity = replace(identity, size=int(m.group(1)))
                if stop is None and int(m.group(1)) == start:
                    return Body(iter(()), start, start, identity=identity)  # already at the end
                pin.check(identity, what)
            raise RemoteError(
                f"{what}: byte range {start}-{'' if stop is None else stop - 1} not satisfiable"
            )
        self._check(resp, what)
        if resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("content-range", ""))
            if not m or resp.headers.get("content-type", "").lower().startswith("multipart/"):
                _release(resp)  # not a single range that says which bytes it holds
                return Body(iter(()), None, None, identity=identity)
            first, last, total = int(m.group(1)), int(m.group(2)), m.group(3)
            if total != "*":
                identity = replace(identity, size=int(total))
            return Body(_chunks(resp), first, last + 1, lambda: _release(resp), identity)
        length = resp.headers.get("content-length")
        body_stop = int(length) if length is not None else None
        if ranged and resp.status == 200 and (start > 0 or (stop is not None and stop != body_stop)):
            pin.whole_bodies = True  # less than the whole object was asked for: Range is ignored
        identity = replace(identity, size=body_stop)  # a whole body: its length is the object's
        return Body(_chunks(resp), 0, body_stop, lambda: _release(resp), identity)

    def _get(self, url: str, headers: dict[str, str]) -> BaseHTTPResponse:
        """GET `url` (redirects followed), at the place an earlier GET of it was redirected to when
        there is one (`_located`): without credentials when that is another host, and from `url`
        again when that place answers a 4xx other than 412, 416 and 429 (an expired signature). A place that
        fails (no connection, a 5xx) is forgotten, so the retry asks `url` again, as the first GET
        did (the origin may send it to another place)."""
        located = self._located.get(url)
        if located is not None:
            there = urlsplit(located)
            sent = headers
            if there[:2] != urlsplit(url)[:2]:  # the credentials stay for `url` if this place expired
                sent = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIALS}
            try:
                resp = self._manager(there).urlopen(
                    "GET", located, headers=sent, preload_content=False, decode_content=False
                )
            except BaseException:  # that place is gone (connection refused, TLS): the retry asks `url`
                self._located.pop(url, None)
                raise
            if resp.status >= 500:  # that place fails: the retry asks `url`, which may send elsewhere
                self._located.pop(url, None)
            if not 400 <= resp.status < 500 or resp.status in _KEPT_LOCATION:
                return resp
            _release(resp)
            self._located.pop(url, None)
        resp = self._manager(urlsplit(url)).urlopen(
            "GET", url, headers=headers, preload_content=False, decode_content=False
        )
        last = resp.retries.history[-1] if resp.retries is not None and resp.retries.history else None
        if last is not None and last.url and last.redirect_location and resp.status in (200, 206):
            self._located[url] = urljoin(last.url, last.redirect_location)
        return resp

    def stream(
        self, url: str, offset: int, length: int | None, what: str, pin: Pin | None = None
    ) -> Iterator[bytes]:
        """Bytes of one object: every request after the first (and the first, if `pin` already names
        the object) carries If-Match on its strong ETag, else If-Unmodified-Since on its date (unless
        `if_match` is off); every answer is checked against the pin, so a file replaced
        mid-download fails, never splices two versions."""
        from urllib3.exceptions import HTTPError

        pinned = pin if pin is not None else Pin()

        def open_at(start: int, stop: int | None, ranged: bool) -> Body:
            return self.open(url, start, stop, what, pin=pinned, ranged=ranged)

        try:
            yield from resumable_stream(
                open_at, offset, length, self.policy, what, pin=pinned, secrets=self.secrets
            )
        except HTTPError as exc:  # not transient (too many redirects, TLS, bad URL): a safe message
            raise RemoteError(f"{what}: {describe(exc, self.secrets)}") from None

    def read(self, url: str, what: str) -> bytes:
        return read_whole(lambda pin: self.stream(url, 0, None, what, pin))


TOKEN_ENV = "DSCACHE_HTTP_TOKEN"
USERNAME_ENV = "DSCACHE_HTTP_USERNAME"
PASSWORD_ENV = "DSCACHE_HTTP_PASSWORD"


def _basic(username: str, password: str) -> str:
    return f"Basic {base64.b64encode(f'{username}:{password}'.encode()).decode()}"


def env_authorization(env: Mapping[str, str]) -> tuple[str, str] | None:
    """(Authorization header, its secret) from the environment, or None: `DSCACHE_HTTP_TOKEN` as a
    bearer token, else `DSCACHE_HTTP_USERNAME`/`DSCACHE_HTTP_PASSWORD` as Basic auth (in a cluster the
    installer gets them from the source's secretRef: a kubernetes.io/basic-auth Secret's username
    and password keys, or a `token` key)."""
    token = env.get(TOKEN_ENV, "").strip()
    if token:
        return f"Bearer {token}", token
    username, password = env.get(USERNAME_ENV), env.get(PASSWORD_ENV)
    if username is None and password is None:
        return None
    return _basic(username or "", password or ""), password or ""


class HttpRemote:
    """Read-only remote under an http(s) base URL. Listing is impossible over plain HTTP."""

    def __init__(
        self,
        base_url: str,
        policy: RetryPolicy | None = None,
        *,
        authorization: tuple[str, str] | None = None,
    ) -> None:
        """Userinfo in `base_url` becomes Basic auth; else `authorization` (header value, the secret in
        it, as from `env_authorization`) is sent. Either goes to the URL's host only (not across
        redirects) and never appears in messages."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https"):
            raise RemoteError(f"not an http(s) URL: {display_url(base_url)}")
        headers: dict[str, str] = {}
        secret: str | None = None
        if parts.username is not None or parts.password is not None:
            secret = None if parts.password is None else unquote(parts.password)
            headers["Authorization"] = _basic(unquote(parts.username or ""), secret or "")
            parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        elif authorization is not None:
            headers["Authorization"], secret = authorization
        self._base = urlunsplit(parts).rstrip("/")
        self._display = display_url(self._base)
        self._fetch = HttpFetcher(policy or RetryPolicy.from_env(), headers=headers, secrets=(secret,))

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

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        url, what = self._url(path)
        return self._fetch.stream(url, offset, length, what, pin)

    def list_files(self, prefix: str) -> list[RemoteFile]:
        raise RemoteError(f"{self._display}: plain HTTP cannot list files: {HTTP_FILES}")

    def put_file(self, path: str, local: Path) -> None:
        raise RemoteError(f"{self._display}: plain HTTP remotes are read-only")

    def close(self) -> None:
        self._fetch.close()
