"""Google Cloud Storage remotes (`gs://bucket/prefix`): listings and uploads through the official
client (google-cloud-storage, its retries off), object bytes through our own Range-resuming fetcher.

Why this split, measured with `bench/bench_store_reads.py` against fake-gcs-server on 127.0.0.1 (bytes
[1 MiB, 256 MiB) of one object, best of three, each client in a fresh process; a shared 2-core
machine at load 8-13, so times vary by tens of percent between runs, their order does not):

| client                                 | import+open | first byte | client CPU | peak RSS |
|----------------------------------------|-------------|------------|------------|----------|
| this module (bytes: HttpFetcher)       | 0.9 s       | 1 ms       | 0.05 s     | 60 MiB   |
| google-cloud-storage download_as_bytes | 0.6 s       | 1124 ms    | 0.54 s     | 569 MiB  |
| google-cloud-storage Blob.open reader  | (0.3 s)     | 35 ms      | 0.69 s     | 96 MiB   |
| obstore 0.12 (Rust object_store)       | 0.07 s      | 2 ms       | 0.10 s     | 37 MiB   |
| gcsfs 2026.10 (fsspec)                 | 1.5 s       | 31 s       | 0.42 s     | 852 MiB  |

(import+open of this module includes google-cloud-storage's import, ~0.3 s on a quiet machine, of
557 modules; google.auth alone is 18 ms. The Blob.open row is from an earlier run of the same kind.)
In forked workers, where the parent already imported everything, opening a remote and reading a
first 1 MiB range took 7-35 ms.

The official client has no streaming read (a range is buffered whole, or read in buffered chunks),
gcsfs adds its own retries and an event loop, and obstore, the lightest, hangs in a forked child once
the parent has used it (measured: a child's first read, even on a new store, did not return within
60 s; tokio; the installer forks its workers after planning in the parent) and reports no
md5/crc32c (its ObjectMeta has the ETag only). So the bytes go through `HttpFetcher` (as
Hugging Face's do): one GET per range, streamed, resumed under the one `RetryPolicy`, keep-alive
pools per worker. The client's 310 ms import is paid once by the installer's parent (forked workers
inherit it) and never by `dscache prepare`.

Pinning: the listing (or the first answer) names the object's generation; every later request
carries `ifGenerationMatch` (a replaced object answers 412) and every answer's `x-goog-generation`
is checked, so two generations are never spliced. Digests: `x-goog-hash` (md5 and crc32c of the
whole object) is recorded in the pin, and the transfer checks both over every byte of the object
(`install.digests`, also across a resumed partial file); composite objects have no md5 and are
verified by their crc32c.

Credentials, first match: `anonymous: true` (public buckets); none for an emulator
(`STORAGE_EMULATOR_HOST` set and no GOOGLE_APPLICATION_CREDENTIALS); GOOGLE_APPLICATION_CREDENTIALS
holding the JSON key document itself (how the operator passes a Secret's key as env) or, as usual,
its path; else application default credentials (a gcloud login, GKE Workload Identity through the
metadata server); else none (public buckets read; a refusal names what to set). Tokens are
refreshed as they expire and never appear in messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dscache.remotes.base import Identity, NotFoundError, Pin, RemoteError, RemoteFile
from dscache.remotes.http import HttpFetcher
from dscache.remotes.retry import (
    RetryPolicy,
    call_with_retry,
    check_rel_path,
    describe,
    is_transient,
    read_whole,
    resumable_stream,
)

PUBLIC_ENDPOINT = "https://storage.googleapis.com"
EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
_HELP = (
    f"set {CREDENTIALS_ENV} (a service account key), use GKE Workload Identity, "
    "or anonymous: true for public buckets"
)


def endpoint_from(spec_endpoint: str | None) -> str | None:
    """Pure on the environment: the API endpoint other than Google's (spec first, then the emulator
    variable, which may be given as host:port); None for Google's."""
    raw = spec_endpoint or os.environ.get(EMULATOR_ENV, "").strip() or None
    if raw is None:
        return None
    return (raw if "://" in raw else f"http://{raw}").rstrip("/")


def gcs_hashes(header: str) -> dict[str, str]:
    """Pure: algorithm -> hex digest from an `x-goog-hash` header (`crc32c=<b64>,md5=<b64>`)."""
    out: dict[str, str] = {}
    for part in header.split(","):
        alg, _, value = part.strip().partition("=")
        if alg in ("md5", "crc32c") and value:
            try:
                digest = base64.b64decode(value, validate=True).hex()
            except (binascii.Error, ValueError):
                continue
            if digest:
                out[alg] = digest
    return out


def _b64_hex(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True).hex() or None
    except (binascii.Error, ValueError):
        return None


def _classify(exc: BaseException) -> bool:
    """Transient: what `is_transient` says, and a token refresh that failed on the network."""
    if is_transient(exc):
        return True
    from google.auth.exceptions import TransportError

    return isinstance(exc, TransportError)


class _Credentials:
    """The credentials for every request of one remote, refreshed (under a lock) before they expire."""

    def __init__(self, anonymous: bool, emulated: bool) -> None:
        from google.auth.credentials import AnonymousCredentials

        self.secrets: tuple[str | None, ...] = ()
        raw = os.environ.get(CREDENTIALS_ENV, "").strip()
        if anonymous or (emulated and not raw):
            self.creds: Any = AnonymousCredentials()  # type: ignore[no-untyped-call]
            self.project = "<none>"
        elif raw.startswith("{"):
            self.creds, self.project = self._from_document(raw)
        else:
            self.creds, self.project = self._default(raw)
        self._lock = threading.Lock()
        self._request: Any = None

    def _from_document(self, raw: str) -> tuple[Any, str]:
        """A service account key given as the document itself (only that type: a document from a
        Secret is not loaded as any credential configuration it may claim to be)."""
        from google.oauth2 import service_account

        try:
            info = json.loads(raw)
        except ValueError:
            raise RemoteError(f"{CREDENTIALS_ENV}: neither a file path nor a JSON key document") from None
        if not isinstance(info, dict):
            raise RemoteError(f"{CREDENTIALS_ENV}: the JSON key is not an object")
        self.secrets = (raw, *(str(info.get(k) or "") or None for k in ("private_key", "private_key_id")))
        if info.get("type") != "service_account":
            raise RemoteError(
                f"{CREDENTIALS_ENV}: a JSON document must be a service account key (type service_account); "
                "give other credential files by path"
            )
        try:
            creds = service_account.Credentials.from_service_account_info(info, scopes=_SCOPES)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise RemoteError(f"{CREDENTIALS_ENV}: not usable credentials ({type(exc).__name__})") from None
        return creds, str(info.get("project_id") or "<none>")

    def _default(self, path: str) -> tuple[Any, str]:
        """Application default credentials; none if nothing is configured, but a named key file
        that cannot be used is an error (never a silent fall back to anonymous requests)."""
        import google.auth
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError

        try:
            creds, project = google.auth.default(scopes=_SCOPES)
        except DefaultCredentialsError:
            if path:
                raise RemoteError(f"{CREDENTIALS_ENV}={path}: not a usable credentials file") from None
            return AnonymousCredentials(), "<none>"  # type: ignore[no-untyped-call]
        return creds, project or "<none>"

    def headers(self) -> dict[str, str]:
        """`Authorization` for the next request (none when anonymous); refreshes an expired token."""
        from google.auth.credentials import AnonymousCredentials

        if isinstance(self.creds, AnonymousCredentials):
            return {}
        with self._lock:
            if not self.creds.valid:
                if self._request is None:
                    from google.auth.transport.requests import Request

                    self._request = Request()
                self.creds.refresh(self._request)
            return {"Authorization": f"Bearer {self.creds.token}"}

    def token(self) -> str | None:
        return getattr(self.creds, "token", None)


class GcsRemote:
    """Objects under `gs://bucket/prefix`."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        anonymous: bool = False,
        policy: RetryPolicy | None = None,
    ) -> None:
        from google.api_core.client_options import ClientOptions
        from google.cloud import storage

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.policy = policy or RetryPolicy.from_env()
        self.endpoint = endpoint_from(endpoint)
        self._auth = _Credentials(anonymous, emulated=bool(os.environ.get(EMULATOR_ENV, "").strip()))
        options = ClientOptions(api_endpoint=self.endpoint) if self.endpoint else None
        self._client: Any = storage.Client(
            project=self._auth.project, credentials=self._auth.creds, client_options=options
        )
        self._base = self.endpoint or PUBLIC_ENDPOINT
        self._fetch = HttpFetcher(
            self.policy,
            secrets=self._secrets(),
            if_match=False,  # the precondition is ifGenerationMatch, in the URL
            auth=self._auth.headers,
            vouch=self._vouch,
        )

    @property
    def url(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}".rstrip("/")

    def _secrets(self) -> tuple[str | None, ...]:
        return (*self._auth.secrets, self._auth.token())

    def _key(self, path: str) -> str:
        check_rel_path(path)
        return f"{self.prefix}/{path}" if self.prefix else path

    def _error(self, exc: BaseException, what: str) -> RemoteError:
        """A safe RemoteError for a non-transient error of the client or of google-auth."""
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth

        if isinstance(exc, api.NotFound):
            return NotFoundError(f"{what}: not found (HTTP 404)")
        if isinstance(exc, (api.Forbidden, api.Unauthorized)):
            return RemoteError(f"{what}: access denied (HTTP {exc.code}); {_HELP}")
        if isinstance(exc, auth.GoogleAuthError):
            return RemoteError(f"{what}: cannot obtain a Google access token ({type(exc).__name__}); {_HELP}")
        return RemoteError(f"{what}: {describe(exc, self._secrets())}")

    def _call(self, fn: Any, what: str) -> Any:
        try:
            return call_with_retry(fn, self.policy, what, classify=_classify, secrets=self._secrets())
        except RemoteError:
            raise
        except Exception as exc:
            raise self._error(exc, what) from None

    def resolve_revision(self) -> str | None:
        return None

    def read_bytes(self, path: str) -> bytes:
        return read_whole(lambda pin: self.stream(path, pin=pin))

    def _media_url(self, key: str, generation: str | None) -> str:
        bucket, name = quote(self.bucket, safe=""), quote(key, safe="")
        url = f"{self._base}/download/storage/v1/b/{bucket}/o/{name}?alt=media"
        return f"{url}&ifGenerationMatch={generation}" if generation else url

    @staticmethod
    def _vouch(headers: Mapping[str, str], pin: Pin) -> Identity:
        """An answer's generation, and the whole object's md5/crc32c (x-goog-hash) for the pin."""
        pin.checksums.update(gcs_hashes(headers.get("x-goog-hash", "")))
        generation = headers.get("x-goog-generation")
        return Identity(version_id=generation) if generation else Identity()

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        key = self._key(path)
        what = f"gs://{self.bucket}/{key}"
        pinned = pin if pin is not None else Pin()

        def chunks() -> Iterator[bytes]:
            # The generation is known from the listing or after the first answer: each request is
            # conditional on the one it has then (`open_at` reads the pin as it is completed).
            def open_at(start: int, stop: int | None, ranged: bool) -> Any:
                url = self._media_url(key, pinned.identity.version_id)
                return self._fetch.open(url, start, stop, what, pin=pinned, ranged=ranged)

            try:
                yield from resumable_stream(
                    open_at,
                    offset,
                    length,
                    self.policy,
                    what,
                    pin=pinned,
                    classify=_classify,
                    secrets=self._secrets(),
                )
            except RemoteError:
                raise
            except Exception as exc:
                raise self._error(exc, what) from None

        return chunks()

    def list_files(self, prefix: str) -> list[RemoteFile]:
        clean = prefix.strip("/")
        key_prefix = f"{self._key(clean)}/" if clean else (f"{self.prefix}/" if self.prefix else "")
        base = len(f"{self.prefix}/") if self.prefix else 0
        what = f"gs://{self.bucket}/{key_prefix}"
        timeout = (self.policy.connect_timeout, self.policy.read_timeout)

        def listing() -> list[RemoteFile]:
            out: list[RemoteFile] = []
            blobs = self._client.list_blobs(self.bucket, prefix=key_prefix, retry=None, timeout=timeout)
            for blob in blobs:
                name, size = str(blob.name), int(blob.size or 0)
                if name.endswith("/") and size == 0:
                    continue  # a "folder" placeholder (the console makes them): nothing to keep
                generation = str(blob.generation) if blob.generation is not None else None
                identity = Identity(size=size, version_id=generation)
                out.append(RemoteFile(name[base:], size, md5=_b64_hex(blob.md5_hash), identity=identity))
            return sorted(out, key=lambda f: f.path)

        result: list[RemoteFile] = self._call(listing, what)
        return result

    def put_file(self, path: str, local: Path) -> None:
        """Upload `local`; the client sends its md5, which the store checks before it keeps the object."""
        key = self._key(path)
        what = f"gs://{self.bucket}/{key}"
        timeout = (self.policy.connect_timeout, self.policy.read_timeout)
        blob = self._client.bucket(self.bucket).blob(key)
        self._call(
            lambda: blob.upload_from_filename(str(local), retry=None, checksum="md5", timeout=timeout), what
        )

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Write `data` to `path` unless an object is there (`ifGenerationMatch=0`); whether it was
        written. Raises RemoteError."""
        from google.api_core.exceptions import PreconditionFailed

        key = self._key(path)
        timeout = (self.policy.connect_timeout, self.policy.read_timeout)
        blob = self._client.bucket(self.bucket).blob(key)

        def create() -> bool:
            try:
                blob.upload_from_string(data, if_generation_match=0, retry=None, timeout=timeout)
            except PreconditionFailed:
                return False
            return True

        created: bool = self._call(create, f"gs://{self.bucket}/{key}")
        return created

    def delete_files(self, paths: list[str], message: str | None = None) -> None:
        """Remove `paths` (a missing one is fine), one request each."""
        bucket = self._client.bucket(self.bucket)
        timeout = (self.policy.connect_timeout, self.policy.read_timeout)
        for path in paths:
            key = self._key(path)
            try:
                self._call(
                    lambda key=key: bucket.delete_blob(key, retry=None, timeout=timeout),
                    f"gs://{self.bucket}/{key}",
                )
            except NotFoundError:
                continue

    def close(self) -> None:
        self._fetch.close()
        self._client.close()
