"""S3Remote through boto3 over HTTP against moto's S3 server (behind a fault-injecting proxy): what
only S3 does (endpoints, anonymous access, what an ETag proves, SSE, stored checksums, multipart).
Reads, faults, Range answers and pinning are the conformance suite's (test_conformance.py)."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from pathlib import Path

import pytest

from dscache.api.manifest import source_from_url
from dscache.api.spec import Source
from dscache.remotes.base import ObjectChangedError, Pin, RemoteError
from dscache.remotes.factory import open_remote
from dscache.remotes.s3 import S3Remote, stored_checksums, vouched_md5
from tests.servers.s3 import S3Env

DATA = os.urandom(1_200_000)
KEY = "mirror/objects/thor/v1/part-1.tar.zst"


@pytest.fixture
def remote(s3: S3Env) -> S3Remote:
    s3.put(KEY, DATA)
    s3.put("mirror/objects/thor/v1/meta.json", b"{}")
    s3.put("other/x.bin", b"x")
    return S3Remote(s3.bucket, "mirror", endpoint=s3.endpoint)


def test_listing_has_the_md5_of_single_part_uploads(remote: S3Remote, s3: S3Env, tmp_path: Path) -> None:
    files = remote.list_files("objects/thor/v1")
    assert [f.md5 for f in files] == [hashlib.md5(b"{}").hexdigest(), hashlib.md5(DATA).hexdigest()]
    local = tmp_path / "a.bin"
    local.write_bytes(b"uploaded bytes")
    remote.put_file("objects/thor/v2/a.bin", local)
    (uploaded,) = remote.list_files("objects/thor/v2")
    assert uploaded.md5 == hashlib.md5(b"uploaded bytes").hexdigest()
    assert all(r.path.startswith(f"/{s3.bucket}") for r in s3.server.log.all())


def test_endpoint_from_aws_endpoint_url(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.put("k/v.bin", b"payload")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    remote = open_remote(source_from_url(f"s3://{s3.bucket}/k"))
    assert remote.read_bytes("v.bin") == b"payload"
    assert s3.server.log.find(f"/{s3.bucket}/k/v.bin")


def test_endpoint_from_the_spec(s3: S3Env) -> None:
    s3.put("k/v.bin", b"payload")
    remote = open_remote(
        Source.model_validate({"s3": {"bucket": s3.bucket, "prefix": "k", "endpoint": s3.endpoint}})
    )
    assert remote.read_bytes("v.bin") == b"payload"
    assert remote.url == f"s3://{s3.bucket}/k"


def test_anonymous_access_is_unsigned(s3: S3Env) -> None:
    client = s3.server.client()
    client.put_object(Bucket=s3.bucket, Key="pub/open.bin", Body=b"public", ACL="public-read")
    client.put_object(Bucket=s3.bucket, Key="pub/closed.bin", Body=b"private")
    remote = S3Remote(s3.bucket, "pub", endpoint=s3.endpoint, anonymous=True)
    assert remote.read_bytes("open.bin") == b"public"
    with pytest.raises(RemoteError, match="access denied"):
        remote.read_bytes("closed.bin")
    assert s3.server.log.all() and all("authorization" not in r.headers for r in s3.server.log.all())


def test_multipart_etag_is_not_taken_for_an_md5(remote: S3Remote, s3: S3Env) -> None:
    client = s3.server.client()
    key = "mirror/big/multi.bin"
    mpu = client.create_multipart_upload(Bucket=s3.bucket, Key=key)
    parts = []
    for n, body in enumerate((b"a" * (5 << 20), b"b" * 10), start=1):
        r = client.upload_part(Bucket=s3.bucket, Key=key, UploadId=mpu["UploadId"], PartNumber=n, Body=body)
        parts.append({"ETag": r["ETag"], "PartNumber": n})
    client.complete_multipart_upload(
        Bucket=s3.bucket, Key=key, UploadId=mpu["UploadId"], MultipartUpload={"Parts": parts}
    )
    (f,) = remote.list_files("big")
    assert f.size == (5 << 20) + 10 and f.md5 is None


def test_no_credentials_is_a_clear_error(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    remote = S3Remote(s3.bucket, "", endpoint=s3.endpoint)
    with pytest.raises(RemoteError, match="no AWS credentials"):
        remote.read_bytes("x")


# --- Downloads pinned to one object, what an ETag proves -------------------------------------------


def test_listing_identifies_each_object(remote: S3Remote, s3: S3Env) -> None:
    s3.put("mirror/objects/thor/v1/dir/", b"")  # an S3 console "folder": nothing to keep
    s3.put("mirror/objects/thor/v1/odd/", b"content")  # content under a key no file can have
    files = {f.path: f for f in remote.list_files("objects/thor/v1")}
    assert sorted(files) == [
        "objects/thor/v1/meta.json",
        "objects/thor/v1/odd/",
        "objects/thor/v1/part-1.tar.zst",
    ]
    part = files["objects/thor/v1/part-1.tar.zst"]
    head = s3.server.client().head_object(Bucket=s3.bucket, Key=KEY)
    assert part.identity.etag == head["ETag"] and part.identity.size == len(DATA)
    assert part.identity.last_modified == int(head["LastModified"].timestamp())
    assert part.checksums == ("CRC32",)


def test_a_multipart_object_replaced_mid_download_is_not_spliced(remote: S3Remote, s3: S3Env) -> None:
    old, new = os.urandom(6 << 20), os.urandom(6 << 20)
    etag = s3.put_multipart("mirror/big/multi.bin", old)
    assert etag.endswith('-2"')
    s3.server.faults.truncate(after=1 << 20, path="*/multi.bin")
    chunks = remote.stream("big/multi.bin")
    first = next(chunks)
    s3.put_multipart("mirror/big/multi.bin", new)
    with pytest.raises(ObjectChangedError):
        first + b"".join(chunks)
    assert s3.server.log.all()[-1].headers["if-match"] == etag


def test_sse_kms_etag_is_not_an_md5(s3: S3Env) -> None:
    s3.put("k/kms.bin", b"secret data", encryption="aws:kms")
    remote = S3Remote(s3.bucket, "k", endpoint=s3.endpoint)
    (listed,) = remote.list_files("")
    assert listed.md5 is not None and listed.md5 != hashlib.md5(b"secret data").hexdigest()
    pin = Pin(want_checksums=True)
    assert b"".join(remote.stream("kms.bin", pin=pin)) == b"secret data"
    assert "md5" not in pin.checksums and "md5" not in pin.hints
    assert pin.checksums == {"crc32": f"{zlib.crc32(b'secret data'):08x}"}
    plain = Pin()
    s3.put("k/plain.bin", b"plain data")
    assert b"".join(remote.stream("plain.bin", pin=plain)) == b"plain data"
    assert plain.checksums == {"md5": hashlib.md5(b"plain data").hexdigest()}


def test_stored_sha256_checksum_is_read_with_a_head_when_the_etag_proves_nothing(s3: S3Env) -> None:
    data = b"x" * 5000
    s3.put("k/sha.bin", data, checksum="SHA256", encryption="aws:kms")
    s3.put("k/plain.bin", data, checksum="SHA256")
    remote = S3Remote(s3.bucket, "k", endpoint=s3.endpoint)
    pin = Pin(want_checksums=True)
    assert b"".join(remote.stream("sha.bin", pin=pin)) == data
    assert pin.checksums == {"sha256": hashlib.sha256(data).hexdigest()}
    get, head = s3.server.log.all()
    assert get.method == "GET" and get.headers.get("x-amz-checksum-mode") is None
    assert (head.method, head.headers["x-amz-checksum-mode"]) == ("HEAD", "ENABLED")
    s3.server.log.clear()
    plain = Pin(want_checksums=True)
    assert b"".join(remote.stream("plain.bin", pin=plain)) == data
    assert plain.checksums == {"md5": hashlib.md5(data).hexdigest()}  # the ETag is enough
    assert [r.method for r in s3.server.log.all()] == ["GET"]


def test_sse_c_objects_need_the_key(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    key = bytes(range(32))
    s3.put("k/ssec.bin", b"customer encrypted", encryption="sse-c", sse_c_key=key)
    remote = S3Remote(s3.bucket, "k", endpoint=s3.endpoint)
    with pytest.raises(RemoteError, match="DSCACHE_S3_SSE_C_KEY") as err:
        remote.read_bytes("ssec.bin")
    assert "gave up" not in str(err.value)
    monkeypatch.setenv("DSCACHE_S3_SSE_C_KEY", base64.b64encode(key).decode())
    keyed = S3Remote(s3.bucket, "k", endpoint=s3.endpoint)
    pin = Pin()
    assert b"".join(keyed.stream("ssec.bin", pin=pin)) == b"customer encrypted"
    assert pin.checksums == {} and pin.hints == {}
    monkeypatch.setenv("DSCACHE_S3_SSE_C_KEY", "not base64!")
    with pytest.raises(RemoteError, match="DSCACHE_S3_SSE_C_KEY: expected the base64"):
        S3Remote(s3.bucket, "k", endpoint=s3.endpoint)


MD5_HELLO = "5d41402abc4b2a76b9719d911017c592"  # md5(b"hello")
HELLO = f'"{MD5_HELLO}"'


@pytest.mark.parametrize(
    ("etag", "headers", "aws", "expected"),
    [
        (HELLO, {}, True, (MD5_HELLO, True)),
        (
            HELLO,
            {"x-amz-server-side-encryption": "AES256"},
            True,
            (MD5_HELLO, True),
        ),
        (HELLO, {"x-amz-server-side-encryption": "aws:kms"}, True, (None, False)),
        (
            HELLO,
            {"x-amz-server-side-encryption": "aws:kms:dsse"},
            False,
            (None, False),
        ),
        (
            HELLO,
            {"x-amz-server-side-encryption-customer-algorithm": "AES256"},
            True,
            (None, False),
        ),
        (f'"{MD5_HELLO}-3"', {}, True, (None, False)),
        ('"AMClbuttcYqB7BF87QMg3AoksQpTl1irPgMPSw1tRzTVHdOG0Lg5"', {}, False, (None, False)),
        (HELLO, {"x-goog-hash": "md5=XUFAKrxLKna5cZ2REBfFkg=="}, False, (None, False)),
        (
            HELLO,
            {"x-amz-server-side-encryption": "AES256"},
            False,
            (MD5_HELLO, False),
        ),
        (HELLO, {}, False, (MD5_HELLO, True)),
    ],
    ids=[
        "plain", "sse-s3", "sse-kms", "dsse-kms", "sse-c", "multipart", "r2-legacy", "gcs",
        "minio-sse", "minio-plain",
    ],
)  # fmt: skip
def test_what_an_etag_vouches_for(
    etag: str, headers: dict[str, str], aws: bool, expected: tuple[str | None, bool]
) -> None:
    assert vouched_md5(etag, headers, aws=aws, directory_bucket=False) == expected


def test_stored_checksums_are_whole_object_digests_only() -> None:
    fields = {
        "ChecksumCRC32": "O0HJ5g==",
        "ChecksumSHA256": "RPg1RJSlugO6F5Ko0+nFNMR6kYGYD956P0SwbvKufH8=",
        "ChecksumCRC32C": "Yh5vVw==-3",  # composite, of a multipart upload
    }
    assert stored_checksums(fields, {"x-goog-hash": "crc32c=n03x6A==,md5=XUFAKrxLKna5cZ2REBfFkg=="}) == {
        "crc32": f"{zlib.crc32(b'x' * 1000):08x}",
        "sha256": hashlib.sha256(b"x" * 1000).hexdigest(),  # what "RPg1...fH8=" encodes
        "crc32c": "9f4df1e8",
        "md5": hashlib.md5(b"hello").hexdigest(),
    }


def test_directory_bucket_etags_are_only_hints() -> None:
    # S3 Express One Zone (bucket names ending in --x-s3): ETags are not MD5 digests.
    assert vouched_md5(HELLO, {}, aws=True, directory_bucket=True) == (MD5_HELLO, False)
