"""open_remote: the right remote per source, safe display URLs, and no heavy imports until needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dscache.api.manifest import source_from_url
from dscache.remotes.factory import open_remote
from dscache.remotes.file import FileRemote
from dscache.remotes.hf import HfRemote
from dscache.remotes.http import HttpRemote
from dscache.remotes.s3 import S3Remote
from tests.servers.files import FileServer
from tests.servers.hub import FakeHub


def test_each_source_kind_opens_a_working_remote(
    tmp_path: Path, http_server: FileServer, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d/f.txt").write_bytes(b"file")
    http_server.put("base/f.txt", b"http")
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo/f.txt").write_bytes(b"hub")
    hub.commit_dir("org/ds", tmp_path / "repo", prefix="pre")
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)

    cases = [
        (f"file://{tmp_path}/d", FileRemote, b"file"),
        (f"{http_server.url}/base", HttpRemote, b"http"),
        ("hf://datasets/org/ds/pre@main", HfRemote, b"hub"),
    ]
    for url, kind, content in cases:
        remote = open_remote(source_from_url(url))
        assert isinstance(remote, kind)
        assert remote.read_bytes("f.txt") == content
    s3 = open_remote(source_from_url("s3://bucket/some/prefix"))
    assert isinstance(s3, S3Remote) and s3.url == "s3://bucket/some/prefix"


def test_importing_the_factory_pulls_no_cloud_sdk() -> None:
    code = (
        "import sys, dscache.remotes.factory, dscache.remotes.file, dscache.remotes.http, "
        "dscache.layouts.hfindex\n"
        "heavy = ('boto3', 'botocore', 'huggingface_hub', 'kubernetes', 'kopf', 'pyarrow', 'httpx')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plain_http_reads_need_neither_httpx_nor_a_tls_context(http_server: FileServer) -> None:
    http_server.put("base/f.txt", b"http")
    code = (
        "import ssl, sys\n"
        "made = []\n"
        "new = ssl.SSLContext.__new__\n"
        "ssl.SSLContext.__new__ = lambda cls, *a, **k: made.append(cls) or new(cls, *a, **k)\n"
        "from dscache.remotes.factory import open_remote\n"
        "from dscache.api.manifest import source_from_url\n"
        f"remote = open_remote(source_from_url({http_server.url + '/base'!r}))\n"
        "assert remote.read_bytes('f.txt') == b'http'\n"
        "heavy = ('httpx', 'httpcore', 'boto3', 'botocore', 'huggingface_hub')\n"
        "print(sorted(m for m in heavy if m in sys.modules), len(made))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] 0"
    assert [r.range for r in http_server.log.all()] == ["bytes=0-"]
