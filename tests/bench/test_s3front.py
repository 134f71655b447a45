"""The benchmark's S3 server answers object reads as moto itself does, with the bytes from disk."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.factories import load_bench

s3front = load_bench("s3front")
SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request"}
COMPARED = ("etag", "last-modified", "content-length", "content-range", "content-type", "accept-ranges")


@pytest.fixture
def front(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    root = tmp_path / "remote"
    (root / "v" / "sub").mkdir(parents=True)
    (root / "v" / "big.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    (root / "v" / "sub" / "small.txt").write_bytes(b"hello s3\n")
    with s3front.FastS3() as server:
        assert server.seed("bench-front", root) == 2
        yield server, root


def _ask(base: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(urlsplit(base).netloc, timeout=30)
    conn.request(method, path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    got = {k.lower(): v for k, v in resp.getheaders() if k.lower() in COMPARED}
    return resp.status, got, body


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/bench-front/v/big.bin", SIGNED),
        ("GET", "/bench-front/v/big.bin?x-id=GetObject", {**SIGNED, "Range": "bytes=1000-300000"}),
        ("GET", "/bench-front/v/big.bin", {**SIGNED, "Range": "bytes=-10"}),
        ("HEAD", "/bench-front/v/big.bin", SIGNED),
        ("HEAD", "/bench-front/v/big.bin", {**SIGNED, "Range": "bytes=0-9"}),
        ("GET", "/bench-front/v/big.bin", {}),
        ("GET", "/bench-front/v/sub/small.txt", {**SIGNED, "If-Match": '"not-the-etag"'}),
        ("GET", "/bench-front/v/sub/small.txt", {**SIGNED, "Range": "bytes=50-60"}),
        ("GET", "/bench-front/v/missing", SIGNED),
        ("GET", "/bench-front?list-type=2&prefix=v/", SIGNED),
    ],
)
def test_reads_are_answered_as_moto_answers_them(
    front: tuple[Any, Path], method: str, path: str, headers: dict[str, str]
) -> None:
    server, _ = front
    fast = _ask(server.endpoint, method, path, headers)
    slow = _ask(server.direct_endpoint, method, path, headers)
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
    if fast[0] < 300:
        assert fast[2] == slow[2]


def test_seeded_reads_do_not_reach_moto(front: tuple[Any, Path]) -> None:
    server, root = front
    status, _, body = _ask(
        server.endpoint, "GET", "/bench-front/v/big.bin", {**SIGNED, "Range": "bytes=0-99"}
    )
    assert (status, body) == (206, (root / "v" / "big.bin").read_bytes()[:100])
    (root / "v" / "big.bin").write_bytes(b"z" * (1 << 20))  # the front reads the file, moto kept its copy
    status, _, body = _ask(server.endpoint, "GET", "/bench-front/v/big.bin", {**SIGNED, "Range": "bytes=0-3"})
    assert (status, body) == (206, b"zzzz")
