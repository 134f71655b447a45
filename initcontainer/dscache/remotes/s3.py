"""S3-compatible remotes (AWS S3, Cloudflare R2, MinIO) through boto3.

Credentials come the standard AWS ways (env, profile, web identity, instance role); the endpoint
from the spec or `AWS_ENDPOINT_URL[_S3]` (which boto3 reads itself). botocore's own retries are
off: one budget (`RetryPolicy`) covers requests and body resumes, and tests can make it instant.
Resumed bodies carry If-Match on the first ETag, so an object replaced mid-download fails instead of
being spliced from two versions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dscache.remotes.base import NotFoundError, RemoteError, RemoteFile
from dscache.remotes.retry import (
    Body,
    RetryPolicy,
    call_with_retry,
    check_rel_path,
    describe,
    is_transient,
    resumable_stream,
)

_READ = 256 << 10  # urllib3 fills a whole read before returning it: small reads lose little on a drop
_CONTENT_RANGE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchBucket"})
_DENIED = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "401"})


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
        import boto3
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
        session = boto3.session.Session(region_name=region)
        self._client: Any = session.client("s3", endpoint_url=endpoint or None, config=config)
        self._secrets = (os.environ.get("AWS_SECRET_ACCESS_KEY"), os.environ.get("AWS_SESSION_TOKEN"))

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, path: str) -> str:
        check_rel_path(path)
        return f"{self.prefix}/{path}" if self.prefix else path

    def _error(self, exc: Exception, what: str) -> RemoteError:
        """Map a non-transient botocore error to a safe RemoteError."""
        from botocore.exceptions import ClientError, NoCredentialsError

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
        return b"".join(self.stream(path))

    def stream(self, path: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        key = self._key(path)
        what = f"s3://{self.bucket}/{key}"
        etag: str | None = None

        def open_at(start: int, stop: int | None) -> Body:
            nonlocal etag
            # Always ranged (see HttpFetcher.open): ContentRange states the true size.
            rng = f"bytes={start}-{'' if stop is None else stop - 1}"
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Range": rng}
            if etag is not None:
                kwargs["IfMatch"] = etag
            try:
                resp = self._client.get_object(**kwargs)
            except Exception as exc:
                if _classify(exc):
                    raise
                if (
                    _code(exc) == "InvalidRange"
                    and stop is None
                    and self._size(key, what) == start  # at the end, or an empty object
                ):
                    return Body(iter(()), start, start)
                if _code(exc) == "PreconditionFailed":
                    raise RemoteError(f"{what}: the object changed while it was being downloaded") from None
                raise self._error(exc, what) from None
            etag = etag or resp.get("ETag")
            body = resp["Body"]
            m = _CONTENT_RANGE.match(resp.get("ContentRange") or "")
            if m:
                first, stop_at = int(m.group(1)), int(m.group(2)) + 1
            else:
                first, stop_at = 0, resp.get("ContentLength")
            return Body(body.iter_chunks(_READ), first, stop_at, body.close)

        return self._resumable(open_at, offset, length, what)

    def _resumable(self, open_at: Any, offset: int, length: int | None, what: str) -> Iterator[bytes]:
        try:
            yield from resumable_stream(
                open_at, offset, length, self.policy, what, classify=_classify, secrets=self._secrets
            )
        except RemoteError:
            raise
        except Exception as exc:
            raise self._error(exc, what) from None

    def _size(self, key: str, what: str) -> int:
        head = self._call(lambda: self._client.head_object(Bucket=self.bucket, Key=key), what)
        return int(head["ContentLength"])

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
                    key = obj["Key"]
                    if key.endswith("/"):
                        continue  # "directory" marker objects
                    out.append(RemoteFile(key[base:], int(obj["Size"]), md5=_etag_md5(obj.get("ETag"))))
            return sorted(out, key=lambda f: f.path)

        result: list[RemoteFile] = self._call(listing, what)
        return result

    def put_file(self, path: str, local: Path) -> None:
        from boto3.s3.transfer import TransferConfig

        key = self._key(path)
        what = f"s3://{self.bucket}/{key}"
        transfer = TransferConfig(
            multipart_threshold=64 << 20, multipart_chunksize=64 << 20, max_concurrency=4
        )
        self._call(lambda: self._client.upload_file(str(local), self.bucket, key, Config=transfer), what)

    def put_files(self, files: list[tuple[str, Path]], message: str | None = None) -> str | None:
        """Upload several files (same call as HfRemote.put_files, where it makes one commit)."""
        for path, local in files:
            self.put_file(path, local)
        return None

    def close(self) -> None:
        self._client.close()


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
