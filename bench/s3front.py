"""The benchmark's S3 server: the test suite's moto S3 (tests/servers/s3.py), with object reads
answered from the files the objects were seeded from.

    with FastS3() as s3:
        s3.seed("bench", Path("remote"))      # every file under remote/ -> s3://bench/<relative path>
        s3.endpoint                           # boto3, rclone, the AWS CLI and dscache talk to this

moto stays the authority: it holds every object (uploaded to it over HTTP), answers listings,
bucket calls and anything unusual, and its HEAD answer for each object (ETag, Last-Modified, type,
checksums) is read once after seeding. A signed, plain GetObject or HeadObject (ranged or not; an
If-Match or If-None-Match that lets it through) is then answered with exactly those headers and the
bytes of the seeded file, sent with sendfile; every other request is relayed to moto unchanged
(moto does not check signatures, and neither does this).

Why not moto alone (measured on the 2-core benchmark machine): moto reads an object's whole value for
every GET, so 16 ranged 8 MiB GETs of a 512 MiB object (what the AWS CLI and rclone do) ran at
16 MB/s, and a whole 512 MiB GET at 368 MB/s; the server, not the model or the contenders, would have
been measured.
"""

from __future__ import annotations

import http.client
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qsl, quote, unquote

from tests.servers.httpbase import FileSlice, parse_range
from tests.servers.s3 import MotoS3, _S3ProxyHandler

_DROP = {"content-length", "date", "server", "connection", "transfer-encoding", "keep-alive"}
_PLAIN_QUERY = {"x-id"}
_SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request"}
_SLOW_CONDITIONS = ("if-modified-since", "if-unmodified-since")


@dataclass(frozen=True)
class SeededObject:
    """An object as moto presents it, and the file holding its bytes."""

    path: Path
    size: int
    etag: str
    headers: dict[str, str]
    """moto's HEAD headers, without framing and checksums."""
    checksums: dict[str, str]
    """x-amz-checksum-* headers, sent only on whole reads that ask for them (as S3 does)."""


class _FastHandler(_S3ProxyHandler):
    owner: FastS3

    def _seeded(self) -> SeededObject | None:
        if any(k not in _PLAIN_QUERY for k, _ in parse_qsl(self.url_query, keep_blank_values=True)):
            return None
        if any(self.headers.get(h) for h in _SLOW_CONDITIONS) or not self.headers.get("Authorization"):
            return None  # moto decides, e.g. that an anonymous read of a private object is denied
        bucket, _, key = self.url_path.lstrip("/").partition("/")
        return self.owner.objects.get((bucket, unquote(key))) if key else None

    def _read(self) -> None:
        obj = self._seeded()
        if obj is None:
            self._forward()
            return
        if_match, if_none_match = self.headers.get("If-Match"), self.headers.get("If-None-Match")
        if (if_match and if_match.strip() not in ("*", obj.etag)) or (
            if_none_match and if_none_match.strip() in ("*", obj.etag)
        ):
            self._forward()  # moto's own 412 or 304
            return
        parsed = parse_range(self.headers.get("Range"), obj.size)
        if parsed == "unsatisfiable" or (parsed is not None and self.command == "HEAD"):
            self._forward()  # moto's own InvalidRange error, and HEAD ignores Range
            return
        headers = dict(obj.headers)
        if isinstance(parsed, tuple):
            start, stop = parsed
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{obj.size}"
            self.send(206, headers, FileSlice(obj.path, start, stop - start))
            return
        if self.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
            headers.update(obj.checksums)
        self.send(200, headers, FileSlice(obj.path, 0, obj.size))

    do_GET = _read
    do_HEAD = _read


class FastS3(MotoS3):
    """moto S3 whose reads of seeded objects are served from disk (see the module docstring)."""

    handler = _FastHandler

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], SeededObject] = {}
        super().__init__()

    def start(self) -> FastS3:
        super().start()
        return self

    def stop(self) -> None:
        """Stop, deleting the seeded buckets from moto first (its state outlives the server)."""
        client = self.bare_client()
        for bucket in sorted({b for b, _ in self.objects}):
            keys = [k for b, k in self.objects if b == bucket]
            for start in range(0, len(keys), 1000):
                batch = [{"Key": k} for k in keys[start : start + 1000]]
                client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            client.delete_bucket(Bucket=bucket)
        self.objects.clear()
        super().stop()

    def seed(self, bucket: str, root: Path) -> int:
        """Create `bucket` and upload every file under `root` as its relative path, each a single
        PUT without stored checksums (so its ETag is its MD5), then read moto's headers of each.

        Returns the number of objects. The files must stay in place while the server runs. Objects
        go to moto as plain HTTP requests with a placeholder signature (moto checks none): boto3's
        signing took as long again as moto itself (17 against 8 ms a PUT, measured). Four at a time,
        or one at a time when a file is over 64 MiB (moto holds a whole PUT body in memory).
        """
        self.bare_client().create_bucket(Bucket=bucket)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        threads = 1 if any(p.stat().st_size > 64 << 20 for p in files) else 4
        local = threading.local()

        def ask(
            method: str, path: Path, headers: dict[str, str], body: BinaryIO | None = None
        ) -> dict[str, str]:
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection(*self.moto_address, timeout=300)
            key = quote(path.relative_to(root).as_posix())
            local.conn.request(method, f"/{bucket}/{key}", body=body, headers={**_SIGNED, **headers})
            resp = local.conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"seeding S3: {method} {bucket}/{key} answered {resp.status}")
            return {k.lower(): v for k, v in resp.getheaders()}

        def put(path: Path) -> None:
            with open(path, "rb") as fh:
                ask("PUT", path, {"Content-Length": str(os.fstat(fh.fileno()).st_size)}, fh)

        def head(path: Path) -> SeededObject:
            got = ask("HEAD", path, {"x-amz-checksum-mode": "ENABLED"})
            headers = {k: v for k, v in got.items() if k not in _DROP and not k.startswith("x-amz-checksum-")}
            checksums = {k: v for k, v in got.items() if k.startswith("x-amz-checksum-")}
            return SeededObject(path, os.stat(path).st_size, got["etag"], headers, checksums)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, files))
            seeded = list(pool.map(head, files))
        for obj in seeded:
            self.objects[(bucket, obj.path.relative_to(root).as_posix())] = obj
        return len(seeded)
