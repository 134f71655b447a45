"""S3Remote through boto3 over HTTP against moto's S3 server (behind a fault-injecting proxy)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from dscache.api.manifest import source_from_url
from dscache.api.spec import Source
from dscache.remotes.base import NotFoundError, RemoteError
from dscache.remotes.factory import open_remote
from dscache.remotes.s3 import S3Remote
from tests.servers.s3 import S3Env

DATA = os.urandom(1_200_000)
KEY = "mirror/objects/thor/v1/part-1.tar.zst"


@pytest.fixture
def remote(s3: S3Env) -> S3Remote:
    s3.put(KEY, DATA)
    s3.put("mirror/objects/thor/v1/meta.json", b"{}")
    s3.put("other/x.bin", b"x")
    return S3Remote(s3.bucket, "mirror", endpoint=s3.endpoint)


def test_reads_ranges_and_lists_with_md5(remote: S3Remote, s3: S3Env) -> None:
    assert remote.read_bytes("objects/thor/v1/part-1.tar.zst") == DATA
    assert b"".join(remote.stream("objects/thor/v1/part-1.tar.zst", 100, 1000)) == DATA[100:1100]
    files = remote.list_files("objects/thor/v1")
    assert [(f.path, f.size) for f in files] == [
        ("objects/thor/v1/meta.json", 2),
        ("objects/thor/v1/part-1.tar.zst", len(DATA)),
    ]
    assert files[1].md5 == hashlib.md5(DATA).hexdigest()
    assert remote.list_files("objects/nothing-here") == []
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


def test_5xx_burst_is_survived(remote: S3Remote, s3: S3Env) -> None:
    s3.server.faults.status(503, times=3, path=f"/{s3.bucket}/mirror/*")
    assert remote.read_bytes("objects/thor/v1/part-1.tar.zst") == DATA
    assert [r.status for r in s3.server.log.all()] == [503, 503, 503, 206]


def test_throttled_listing_is_retried(remote: S3Remote, s3: S3Env) -> None:
    s3.server.faults.status(503, times=2, path=f"/{s3.bucket}")
    assert len(remote.list_files("objects")) == 2


def test_dropped_connection_is_survived_with_identical_bytes(remote: S3Remote, s3: S3Env) -> None:
    s3.server.faults.drop(after=600_000, times=2, path=f"/{s3.bucket}/mirror/*")
    assert remote.read_bytes("objects/thor/v1/part-1.tar.zst") == DATA
    assert [r.fault for r in s3.server.log.all()] == ["drop", "drop", None]


def test_cut_body_resumes_with_range_getobject(remote: S3Remote, s3: S3Env) -> None:
    s3.server.faults.truncate(after=600_000, path=f"/{s3.bucket}/mirror/*")
    assert remote.read_bytes("objects/thor/v1/part-1.tar.zst") == DATA
    first, second = s3.server.log.all()
    assert first.fault == "truncate" and first.range == "bytes=0-"
    assert second.range is not None
    start, end = second.range.removeprefix("bytes=").split("-")
    assert 0 < int(start) <= 600_000 and end in ("", str(len(DATA) - 1))
    assert second.headers.get("if-match")  # the resume insists on the same object version


def test_lying_content_length_is_caught(remote: S3Remote, s3: S3Env) -> None:
    s3.server.faults.short(after=100_000, path=f"/{s3.bucket}/mirror/*")
    assert remote.read_bytes("objects/thor/v1/part-1.tar.zst") == DATA
    assert len(s3.server.log) == 2


def test_empty_object(remote: S3Remote, s3: S3Env) -> None:
    s3.put("mirror/empty.json", b"")
    assert remote.read_bytes("empty.json") == b""


def test_truncated_range_is_retried(remote: S3Remote, s3: S3Env) -> None:
    s3.server.faults.truncate(after=5000, path=f"/{s3.bucket}/mirror/*")
    assert b"".join(remote.stream("objects/thor/v1/part-1.tar.zst", 10, 500_000)) == DATA[10:500_010]
    assert len(s3.server.log) == 2


def test_persistent_failure_gives_up_cleanly(remote: S3Remote, s3: S3Env) -> None:
    s3.server.faults.status(500, times=None, path=f"/{s3.bucket}/mirror/*")
    with pytest.raises(RemoteError, match="gave up after 5 attempt") as err:
        remote.read_bytes("objects/thor/v1/part-1.tar.zst")
    assert "testing-secret" not in str(err.value)
    assert len(s3.server.log) == 5


def test_missing_key_is_not_found(remote: S3Remote, s3: S3Env) -> None:
    with pytest.raises(NotFoundError):
        remote.read_bytes("objects/thor/v1/missing.json")
    assert len(s3.server.log) == 1


def test_put_file_then_read_back(remote: S3Remote, tmp_path: Path) -> None:
    local = tmp_path / "a.bin"
    local.write_bytes(b"uploaded bytes")
    remote.put_file("objects/thor/v2/a.bin", local)
    assert remote.read_bytes("objects/thor/v2/a.bin") == b"uploaded bytes"
    (f,) = remote.list_files("objects/thor/v2")
    assert f.md5 == hashlib.md5(b"uploaded bytes").hexdigest()


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
