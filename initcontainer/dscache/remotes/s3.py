"""S3-compatible remotes (AWS S3, Cloudflare R2, MinIO) through botocore (boto3's transfer manager
for uploads).

Credentials come the standard AWS ways (env, profile, web identity, instance role); the endpoint
from the spec or `AWS_ENDPOINT_URL[_S3]` (which botocore reads itself). The client is botocore's own,
as boto3 would make it without boto3's additions (its resource model paths and injected transfer
methods, which `put_file` gets from `boto3.s3.transfer` directly): importing boto3 (and s3transfer)
cost an install 35-95 ms of CPU before its first request, of ~160 ms for botocore (measured on the
benchmark machine, 2026-11-30). botocore's own retries are off: one budget (`RetryPolicy`) covers
requests and body resumes, and tests can make it instant.
Every GET of a download carries If-Match on the pinned ETag, and each answer's ETag, version id,
Last-Modified and size are checked, so an object replaced mid-download fails instead of being spliced
from two versions.

What an ETag proves depends on the object: it is the MD5 of the bytes only for single-part uploads
stored in the clear or with SSE-S3. SSE-KMS, SSE-C and multipart ETags are not digests; each answer
says how its object is encrypted, so those are verified by what remains: sizes, a manifest's sha256,
and S3's own stored checksums (SHA256, SHA1, CRC32, read with one HEAD in checksum mode when the
ETag proves nothing: S3 does not send them with ranged GETs). Outside AWS a 32-hex ETag of an
encrypted object is only a hint (MinIO encrypts ETags), as it is on directory buckets; GCS states its
digests in x-goog-hash. Objects encrypted with a customer key (SSE-C) are read with the key in
DSCACHE_S3_SSE_C_KEY (base64).

Bytes go through botocore's urllib3 pool too, but are read as they arrive (`read1`, as the HTTP
remote reads them), not through botocore's `StreamingBody.iter_chunks`, which joins reads until each
chunk is full. What that cost is paid where the chunks are written into the page cache: 4 x 512 MB
through bench/netmodel.py (default model), base and this alternated, install CPU user/sys on the
shared 2-core machine under load 14-19 (2026-11-30): `iter_chunks(256 KiB)` 5.7/4.4 and 6.4/4.5 s,
`read1(256 KiB)` 5.5/1.8 and 5.7/2.1 s; perf put the difference in the kernel's copy of the written
chunks (`copy_folio_from_iter_atomic`: 2.0 s against 0.4 s). On the quieter machine (load 4-8) both
took 1.5-2.3 s of system CPU: the joined chunks cost more only when other work competes for the CPU
(and its caches). A signed request of our own on a urllib3 PoolManager, reading into preallocated
buffers, cost the same as botocore's (measured earlier: 0.33 s per 512 MB object either way). The
rest of an S3 install's CPU beyond a Hub install's is the md5 the ETag asks for (see
`install.digests.wanted`).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dscache.remotes.base import (
    Identity,
    NotFoundError,
    ObjectChangedError,
    Pin,
    RemoteError,
    RemoteFile,
    RemoteSettingError,
)
from dscache.remotes.retry import (
    Body,
    RetryPolicy,
    call_with_retry,
    check_rel_path,
    describe,
    is_transient,
    read_whole,
    resumable_stream,
)

_READ = 256 << 10  # most bytes one read returns
_CONTENT_RANGE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchBucket"})
_DENIED = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "401"})
_KMS = frozenset({"aws:kms", "aws:kms:dsse"})
_CHECKSUMS = {
    "ChecksumSHA256": "sha256",
    "ChecksumSHA1": "sha1",
    "ChecksumCRC32": "crc32",
    "ChecksumCRC32C": "crc32c",
    "ChecksumCRC64NVME": "crc64nvme",
}
SSE_C_KEY_ENV = "DSCACHE_S3_SSE_C_KEY"


# a conditional PutObject that lost: the object exists (412), or another conditional write to it is
# in flight (409)
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


def _classify(exc: BaseException) -> bool:
    """Transient, also when wrapped (boto3's S3UploadFailedError hides the ClientError)."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 4:
        if is_transient(cur):
            return True
        if isinstance(cur, RemoteError):
            return False
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


def _etag_md5(etag: str | None) -> str | None:
    """The MD5 in a single-part upload's ETag; multipart ETags ('<md5>-<parts>') are not digests."""
    if not etag:
        return None
    value = etag.strip('"').lower()
    return value if re.fullmatch(r"[0-9a-f]{32}", value) else None


def vouched_md5(
    etag: str | None, headers: dict[str, str], *, aws: bool, directory_bucket: bool
) -> tuple[str | None, bool]:
    """Pure: (md5 hex, trusted) that an S3 answer's ETag stands for; (None, False) if none.

    `headers` are the answer's (lower-case names). Not an MD5: multipart (`-N`) and other non-hex
    ETags, SSE-KMS/DSSE, SSE-C, GCS (which says its MD5 in x-goog-hash instead). Only a hint, not
    proof: an encrypted object outside AWS (MinIO encrypts its ETags) and directory buckets.
    """
    md5 = _etag_md5(etag)
    if md5 is None or any(name.startswith("x-goog-") for name in headers):
        return None, False
    sse = headers.get("x-amz-server-side-encryption", "").lower()
    if sse in _KMS or "x-amz-server-side-encryption-customer-algorithm" in headers:
        return None, False
    return md5, not directory_bucket and (aws or not sse)


def stored_checksums(fields: dict[str, Any], headers: dict[str, str]) -> dict[str, str]:
    """Pure: algorithm -> hex digest of the whole object from an S3 answer (HEAD in checksum mode) or
    GCS's x-goog-hash. Composite checksums of multipart uploads (`...-N`) are not whole-object
    digests and are left out."""
    out: dict[str, str] = {}
    for name, alg in _CHECKSUMS.items():
        value = fields.get(name)
        if isinstance(value, str) and "-" not in value:
            digest = _b64_hex(value)
            if digest is not None:
                out[alg] = digest
    for part in headers.get("x-goog-hash", "").split(","):
        alg, _, value = part.strip().partition("=")
        digest = _b64_hex(value) if alg in ("md5", "crc32c") else None
        if digest is not None:
            out[alg] = digest
    return out


def _b64_hex(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).hex() or None
    except (binascii.Error, ValueError):
        return None


def _timestamp(value: Any) -> int | None:
    stamp = getattr(value, "timestamp", None)
    return int(stamp()) if callable(stamp) else None


def _answer(resp: dict[str, Any], size: int | None) -> tuple[Identity, dict[str, str]]:
    """(identity, lower-case headers) of a GetObject/HeadObject answer."""
    meta = resp.get("ResponseMetadata", {})
    headers = {str(k).lower(): str(v) for k, v in dict(meta.get("HTTPHeaders", {})).items()}
    identity = Identity(
        size=size,
        etag=resp.get("ETag"),
        version_id=resp.get("VersionId"),
        last_modified=_timestamp(resp.get("LastModified")),
    )
    return identity, headers


def _sse_c_params() -> dict[str, Any]:
    """GetObject/HeadObject arguments for objects encrypted with a customer key, from the env."""
    raw = os.environ.get(SSE_C_KEY_ENV, "").strip()
    if not raw:
        return {}
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise RemoteError(f"{SSE_C_KEY_ENV}: expected the base64 of a 256-bit key")
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def _is_aws(endpoint: str | None) -> bool:
    if endpoint is None:
        return True
    host = (urlsplit(endpoint).hostname or "").lower()
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


class S3Remote:
    """Objects under `s3://bucket/prefix`."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        anonymous: bool = False,
        policy: RetryPolicy | None = None,
    ) -> None:
        from botocore import UNSIGNED
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.policy = policy or RetryPolicy.from_env()
        custom = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        config = Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=self.policy.connect_timeout,
            read_timeout=self.policy.read_timeout,
            max_pool_connections=64,
            tcp_keepalive=True,
            signature_version=UNSIGNED if anonymous else None,
            # MinIO and most self-hosted stores only do path-style; R2 and AWS accept it.
            s3={"addressing_style": "path"} if custom else None,
            # boto3 >= 1.36 defaults to CRC checksums some S3-compatible stores reject; and a response
            # checksum is checked only after the last byte, too late for a streaming consumer. Sizes
            # and the manifests' sha256 are verified by the installer instead.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        from botocore.exceptions import BotoCoreError

        try:
            self._client: Any = _botocore_session().create_client(
                "s3", region_name=region, endpoint_url=endpoint or None, config=config
            )
        except BotoCoreError as exc:  # credentials configured but unusable (a web identity without a role)
            raise RemoteError(f"{self.url}: the AWS credential configuration is unusable: {exc}") from None
        self._sse_c = _sse_c_params()
        self._secrets = (
            os.environ.get("AWS_SECRET_ACCESS_KEY"),
            os.environ.get("AWS_SESSION_TOKEN"),
            os.environ.get(SSE_C_KEY_ENV),
        )
        self._aws = _is_aws(custom)
        self._directory_bucket = bucket.endswith("--x-s3")

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, path: str) -> str:
        check_rel_path(path)
        return f"{self.prefix}/{path}" if self.prefix else path

    def _error(self, exc: Exception, what: str) -> RemoteError:
        """Map a non-transient botocore error to a safe RemoteError."""
        from botocore.exceptions import ClientError, NoCredentialsError, ParamValidationError

        if isinstance(exc, ParamValidationError):  # several lines, each a reason: all of them, on one
            reasons = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
            return RemoteSettingError(f"{what}: botocore refused the request: {'; '.join(reasons) or exc}")
        if isinstance(exc, NoCredentialsError):
            return RemoteError(
                f"{what}: no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE, or use anonymous access for public buckets)"
            )
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND:
                return NotFoundError(f"{what}: not found ({code})")
            if code in _DENIED:
                return RemoteError(f"{what}: access denied ({code}); check the credentials")
            message = str(exc.response.get("Error", {}).get("Message", ""))
            # A HEAD's 400 has no body to say why; a GET's names the encryption.
            if code == "400" or (code == "InvalidRequest" and "Server Side Encryption" in message):
                return RemoteError(
                    f"{what}: the object cannot be read as asked (HTTP 400); if it is encrypted with "
                    f"a customer-provided key (SSE-C), set {SSE_C_KEY_ENV} to the base64 key"
                )
        return RemoteError(f"{what}: {describe(exc, self._secrets)}")

    def _call(self, fn: Any, what: str) -> Any:
        try:
            return call_with_retry(fn, self.policy, what, classify=_classify, secrets=self._secrets)
        except RemoteError:
            raise
        except Exception as exc:
            raise self._error(exc, what) from None

    def resolve_revision(self) -> str | None:
        return None

    def read_bytes(self, path: str) -> bytes:
        return read_whole(lambda pin: self.stream(path, pin=pin))

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        key = self._key(path)
        what = f"s3://{self.bucket}/{key}"
        pinned = pin if pin is not None else Pin()

        def open_at(start: int, stop: int | None, ranged: bool) -> Body:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, **self._sse_c}
            if ranged:  # always ranged (see HttpFetcher.open): ContentRange states the true size
                kwargs["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
            if pinned.identity.etag is not None:
                kwargs["IfMatch"] = pinned.identity.etag
            try:
                resp = self._client.get_object(**kwargs)
            except Exception as exc:
                if _classify(exc):
                    raise
                if _code(exc) == "PreconditionFailed":
                    raise ObjectChangedError(
                        f"{what}: the object changed while it was being downloaded"
                    ) from None
                if _code(exc) == "InvalidRange":
                    self._head(key, what, pinned)
                    if stop is None and pinned.identity.size == start:  # at the end, or empty
                        return Body(iter(()), start, start)
                raise self._error(exc, what) from None
            body = resp["Body"]
            m = _CONTENT_RANGE.match(resp.get("ContentRange") or "")
            status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if m:
                first, stop_at = int(m.group(1)), int(m.group(2)) + 1
                size = int(m.group(3)) if m.group(3) != "*" else None
            elif status == 206:  # a partial answer that does not say which bytes it holds
                body.close()
                return Body(iter(()), None, None, identity=_answer(resp, None)[0])
            else:
                first, stop_at = 0, resp.get("ContentLength")
                size = stop_at
            identity, headers = _answer(resp, size)
            self._vouch(pinned, identity, headers)
            if pinned.want_checksums:
                pinned.want_checksums = False
                if "md5" not in pinned.checksums:  # the ETag proves nothing: ask what S3 stored
                    try:
                        self._head(key, what, pinned, checksums=True)
                    except BaseException:
                        body.close()
                        raise
            return Body(_arriving(body), first, stop_at, body.close, identity)

        return self._resumable(open_at, offset, length, what, pinned)

    def _vouch(self, pin: Pin, identity: Identity, headers: dict[str, str]) -> None:
        """Record which digests of the whole object an answer vouches for (see `vouched_md5`)."""
        md5, trusted = vouched_md5(
            identity.etag, headers, aws=self._aws, directory_bucket=self._directory_bucket
        )
        if md5 is not None:
            (pin.checksums if trusted else pin.hints)["md5"] = md5
        pin.checksums.update(stored_checksums({}, headers))

    def _head(self, key: str, what: str, pin: Pin, checksums: bool = False) -> None:
        """HEAD the pinned object (with its stored checksums if asked): checks and completes `pin`."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, **self._sse_c}
        if checksums:
            kwargs["ChecksumMode"] = "ENABLED"
        head = self._call(lambda: self._client.head_object(**kwargs), what)
        identity, headers = _answer(head, int(head["ContentLength"]))
        pin.check(identity, what)
        self._vouch(pin, identity, headers)
        pin.checksums.update(stored_checksums(head, headers))

    def _resumable(
        self, open_at: Any, offset: int, length: int | None, what: str, pin: Pin
    ) -> Iterator[bytes]:
        try:
            yield from resumable_stream(
                open_at,
                offset,
                length,
                self.policy,
                what,
                pin=pin,
                classify=_classify,
                secrets=self._secrets,
            )
        except RemoteError:
            raise
        except Exception as exc:
            raise self._error(exc, what) from None

    def list_files(self, prefix: str) -> list[RemoteFile]:
        clean = prefix.strip("/")
        key_prefix = f"{self._key(clean)}/" if clean else (f"{self.prefix}/" if self.prefix else "")
        base = len(f"{self.prefix}/") if self.prefix else 0
        what = f"s3://{self.bucket}/{key_prefix}"

        def listing() -> list[RemoteFile]:
            out: list[RemoteFile] = []
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=key_prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    key, size = obj["Key"], int(obj["Size"])
                    if key.endswith("/") and size == 0:
                        continue  # a "directory" marker (S3 console folders): no content to keep
                    identity = Identity(
                        size=size, etag=obj.get("ETag"), last_modified=_timestamp(obj.get("LastModified"))
                    )
                    out.append(
                        RemoteFile(
                            key[base:],
                            size,
                            md5=_etag_md5(obj.get("ETag")),
                            identity=identity,
                            checksums=tuple(obj.get("ChecksumAlgorithm", ())),
                        )
                    )
            return sorted(out, key=lambda f: f.path)

        result: list[RemoteFile] = self._call(listing, what)
        return result

    def put_file(self, path: str, local: Path) -> None:
        from boto3.s3.transfer import S3Transfer, TransferConfig  # boto3 only where it uploads

        key = self._key(path)
        what = f"s3://{self.bucket}/{key}"
        config = TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=64 << 20, max_concurrency=4)

        def upload() -> None:
            with S3Transfer(self._client, config) as transfer:  # what boto3's client.upload_file does
                transfer.upload_file(str(local), self.bucket, key)

        self._call(upload, what)

    def create_exclusive(self, path: str, data: bytes) -> bool | None:
        """Write `data` to `path` unless an object is there (PutObject with `If-None-Match: *`); whether
        it was written, or None where the store does not implement conditional writes (an older
        S3-compatible server answering 501; one that ignores the header writes). Raises RemoteError."""
        key = self._key(path)

        def create() -> bool | None:
            from botocore.exceptions import ClientError

            try:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code in _PRECONDITION_CODES:
                    return False
                if code in ("NotImplemented", "501"):  # "501": the status of an answer without a body
                    return None
                raise
            return True

        created: bool | None = self._call(create, f"s3://{self.bucket}/{key}")
        return created

    def put_files(self, files: list[tuple[str, Path]], message: str | None = None) -> str | None:
        """Upload several files (same call as HfRemote.put_files, where it makes one commit)."""
        for path, local in files:
            self.put_file(path, local)
        return None

    def delete_files(self, paths: list[str], message: str | None = None) -> None:
        """Remove `paths` (a missing one is fine), up to 1000 per DeleteObjects request."""
        for start in range(0, len(paths), 1000):
            keys = [{"Key": self._key(p)} for p in paths[start : start + 1000]]
            what = f"s3://{self.bucket}/{keys[0]['Key']}"
            answer = self._call(
                lambda keys=keys: self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                ),
                what,
            )
            for failed in answer.get("Errors", ()):
                raise RemoteError(
                    f"s3://{self.bucket}/{failed.get('Key')}: cannot remove: {failed.get('Code')}"
                )

    def close(self) -> None:
        self._client.close()


_LOADER: list[Any] = []
"""The botocore data loader of the first S3Remote of this process (and of the workers forked from it)."""


def _botocore_session() -> Any:
    """A new botocore session (its own credentials, config and connections) that reads botocore's
    service models through one loader per process: the loader caches what it parsed, and the
    installer's worker processes, forked after the parent opened its remote, inherit it. Without it
    each worker parsed endpoints.json and the S3 model again and listed every service's directory:
    0.23 s from fork to the first GET on the benchmark machine (4 workers on 2 cores)."""
    import botocore.session

    session = botocore.session.get_session()
    if _LOADER:
        session.register_component("data_loader", _LOADER[0])
    else:
        _LOADER.append(session.get_component("data_loader"))
    return session


def _arriving(body: Any) -> Iterator[bytes]:
    """The bytes of a GetObject `body` (botocore's StreamingBody) as they arrive, at most `_READ` at
    a time, read from the urllib3 response it wraps (see the module docstring). Errors are urllib3's
    (`retry.is_transient` knows them); a body cut short ends early, which `resumable_stream` resumes."""
    raw = body._raw_stream  # StreamingBody has no read1 of its own, nor a public accessor for this
    while chunk := raw.read1(_READ):
        yield chunk


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
