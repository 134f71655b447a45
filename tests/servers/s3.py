"""moto's S3 server on 127.0.0.1, behind a fault-injecting HTTP proxy (`proxy.FaultProxy`).

Clients (boto3, over real HTTP) talk to `endpoint`, the proxy; it forwards each request to moto's
`ThreadedMotoServer` and relays the answer through the shared fault machinery, so S3 gets the same
5xx bursts, dropped connections, Range answers and request log as the other test servers.
`direct_endpoint` bypasses the proxy (for seeding data without touching the log).

Where moto is not faithful to S3, the proxy presents what S3 (or another store) would answer for the
objects registered in `MotoS3.encrypted` (see `S3Env.put`): moto keeps MD5 ETags for SSE-KMS objects
and ignores SSE-C; AWS gives both ETags that are not MD5s, and refuses to read an SSE-C object
without its key. The proxy swaps the ETag for an opaque one in listings, answers and If-Match, and
enforces and echoes the SSE-C headers. Kind "opaque" is a MinIO-like store whose SSE-S3 objects
carry encrypted (non-MD5) ETags.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from tests.servers.proxy import FaultProxy, ProxyHandler

_SSE_C = "x-amz-server-side-encryption-customer-"
_NEEDS_KEY = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidRequest</Code><Message>The object was '
    b"stored using a form of Server Side Encryption. The correct parameters must be provided to "
    b"retrieve the object.</Message></Error>"
)
_CONTENTS = re.compile(rb"<Contents>.*?</Contents>", re.S)

Encryption = Literal["aws:kms", "sse-c", "opaque"]


@dataclass(frozen=True)
class Encrypted:
    """An object the proxy presents as S3 would: its real (moto) and presented ETag hex."""

    kind: Encryption
    real: str
    shown: str
    key_md5: str | None = None


class _S3ProxyHandler(ProxyHandler):
    owner: MotoS3

    def _encrypted(self) -> Encrypted | None:
        bucket, _, key = self.url_path.lstrip("/").partition("/")
        return self.owner.encrypted.get((bucket, unquote(key))) if key else None

    def intercept(self, headers: dict[str, str]) -> bool:
        """Refuse to read an SSE-C object without its key, as S3 does."""
        enc = self._encrypted()
        if enc is None or enc.kind != "sse-c" or self.command not in ("GET", "HEAD"):
            return False
        given = {k.lower(): v for k, v in headers.items() if k.lower().startswith(_SSE_C)}
        if given.get(f"{_SSE_C}key-md5") == enc.key_md5:
            return False
        self.send(400, {"Content-Type": "application/xml"}, b"" if self.command == "HEAD" else _NEEDS_KEY)
        return True

    def adapt_request(self, headers: dict[str, str]) -> dict[str, str]:
        enc = self._encrypted()
        if enc is None:
            return headers
        return {
            k: v.replace(enc.shown, enc.real) if k.lower() == "if-match" else v for k, v in headers.items()
        }

    def adapt(self, status: int, headers: dict[str, str], data: bytes) -> tuple[dict[str, str], bytes]:
        enc = self._encrypted()
        if enc is not None:
            headers = {
                k: v.replace(enc.real, enc.shown) if k.lower() == "etag" else v for k, v in headers.items()
            }
            if enc.kind == "sse-c" and status < 300:
                headers[f"{_SSE_C}algorithm"] = "AES256"
                headers[f"{_SSE_C}key-MD5"] = enc.key_md5 or ""
        elif self.command == "GET" and "list-type" in self.url_query:
            data = self._listing(data)
        return headers, data

    def _listing(self, data: bytes) -> bytes:
        """A ListObjectsV2 answer with the presented ETags of the registered objects."""
        bucket = self.url_path.strip("/")

        def swap(m: re.Match[bytes]) -> bytes:
            block = m.group(0)
            key = re.search(rb"<Key>(.*?)</Key>", block)
            enc = self.owner.encrypted.get((bucket, key.group(1).decode())) if key else None
            return block.replace(enc.real.encode(), enc.shown.encode()) if enc else block

        return _CONTENTS.sub(swap, data)


class MotoS3(FaultProxy):
    """moto S3 + proxy. Use `endpoint` with boto3; `client()` gives a ready boto3 client."""

    handler = _S3ProxyHandler

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._direct: Any = None
        self._bare: Any = None
        self.encrypted: dict[tuple[str, str], Encrypted] = {}
        super().__init__()

    @property
    def moto_address(self) -> tuple[str, int]:
        return self.upstream

    def start(self) -> MotoS3:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        self._moto.start()
        self.upstream = self._moto.get_host_and_port()
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        self._moto.stop()

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def direct_endpoint(self) -> str:
        host, port = self.moto_address
        return f"http://{host}:{port}"

    def client(self, direct: bool = True) -> Any:
        """A boto3 S3 client with test credentials (direct to moto by default: no faults, no log)."""
        import boto3

        if direct and self._direct is not None:
            return self._direct
        client = boto3.client(
            "s3",
            endpoint_url=self.direct_endpoint if direct else self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing-secret",
        )
        if direct:
            self._direct = client
        return client

    def bare_client(self) -> Any:
        """A direct client that sends no checksum with uploads (objects without stored checksums)."""
        import boto3
        from botocore.config import Config

        if self._bare is None:
            self._bare = boto3.client(
                "s3",
                endpoint_url=self.direct_endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing-secret",
                config=Config(request_checksum_calculation="when_required"),
            )
        return self._bare

    def new_bucket(self, prefix: str = "dscache-test") -> str:
        name = f"{prefix}-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)
        return name


@dataclass
class S3Env:
    """A fresh bucket on the shared moto server; AWS_* test credentials are set in the environment."""

    server: MotoS3
    bucket: str

    @property
    def endpoint(self) -> str:
        """Through the fault proxy (faults and log apply)."""
        return self.server.endpoint

    def put(
        self,
        key: str,
        data: bytes,
        *,
        encryption: Encryption | None = None,
        checksum: str | None = "CRC32",
        sse_c_key: bytes | None = None,
    ) -> None:
        """Seed an object directly in moto (not logged, no faults), with a stored checksum of the
        given algorithm (None: none), presented by the proxy as `encryption` would store it."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data}
        if checksum is not None:
            args["ChecksumAlgorithm"] = checksum
        if encryption == "aws:kms":
            args["ServerSideEncryption"] = "aws:kms"
        elif encryption == "opaque":
            args["ServerSideEncryption"] = "AES256"
        client = self.server.client() if checksum is not None else self.server.bare_client()
        etag = client.put_object(**args)["ETag"].strip('"')
        self.server.encrypted.pop((self.bucket, key), None)
        if encryption is not None:
            shown = hashlib.md5(f"{encryption}:{etag}".encode()).hexdigest()  # 32 hex, not the MD5
            key_md5 = base64.b64encode(hashlib.md5(sse_c_key).digest()).decode() if sse_c_key else None
            self.server.encrypted[(self.bucket, key)] = Encrypted(encryption, etag, shown, key_md5)

    def put_multipart(self, key: str, data: bytes, part_size: int = 5 << 20) -> str:
        """Seed `data` as a multipart upload (its ETag ends in `-<parts>`); returns the ETag."""
        client = self.server.client()
        mpu = client.create_multipart_upload(Bucket=self.bucket, Key=key)
        parts = []
        for n, start in enumerate(range(0, len(data), part_size), start=1):
            body = data[start : start + part_size]
            r = client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=mpu["UploadId"], PartNumber=n, Body=body
            )
            parts.append({"ETag": r["ETag"], "PartNumber": n})
        done = client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=mpu["UploadId"], MultipartUpload={"Parts": parts}
        )
        self.server.encrypted.pop((self.bucket, key), None)
        return str(done["ETag"])
