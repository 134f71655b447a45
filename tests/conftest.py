"""Shared fixtures: real servers on 127.0.0.1 (HTTP files, fake Hugging Face Hub, moto S3) and an
environment that keeps tests fast (tiny retry backoff) and away from real credentials and endpoints.

    def test_x(http_server):            # FileServer serving http_server.root at http_server.url
    def test_y(hub):                    # FakeHub at hub.endpoint; hub.create_repo / commit / tag
    def test_z(s3):                     # S3Env: s3.bucket on s3.endpoint (moto behind a fault proxy)

Every server has `.faults` (arm 5xx bursts, drops, truncation, corruption, latency) and `.log`
(requests seen: method, path, headers, status). See tests/servers/.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports huggingface_hub (it reads these at import time): no user token, no cache.
_HF_HOME = tempfile.mkdtemp(prefix="dscache-test-hf-")
atexit.register(shutil.rmtree, _HF_HOME, True)
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HUGGING_FACE_HUB_TOKEN", None)

from tests.servers.files import FileServer  # noqa: E402
from tests.servers.hub import FakeHub  # noqa: E402
from tests.servers.s3 import MotoS3, S3Env  # noqa: E402

_AWS_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


@pytest.fixture(autouse=True)
def _test_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fast, bounded retries and no ambient credentials or endpoints."""
    monkeypatch.setenv("DSCACHE_RETRY_ATTEMPTS", "5")
    monkeypatch.setenv("DSCACHE_RETRY_BASE_DELAY", "0.001")
    monkeypatch.setenv("DSCACHE_RETRY_MAX_DELAY", "0.01")
    monkeypatch.setenv("DSCACHE_RETRY_DEADLINE", "30")
    monkeypatch.setenv("DSCACHE_CONNECT_TIMEOUT", "5")
    monkeypatch.setenv("DSCACHE_READ_TIMEOUT", "10")
    for var in (*_AWS_VARS, "HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    nowhere = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[FileServer]:
    """A Range-capable HTTP server for `http_server.root` (a fresh directory) at `http_server.url`."""
    with FileServer(tmp_path / "www") as server:
        yield server


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    """A fake Hugging Face Hub at `hub.endpoint` (set `hub.token` to require a token)."""
    with FakeHub(tmp_path / "hub") as server:
        yield server


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """One moto S3 server (+ fault proxy) for the session; use the `s3` fixture in tests."""
    with MotoS3() as server:
        yield server


@pytest.fixture
def s3(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Env]:
    """A fresh bucket on the shared moto server, faults and log reset, AWS_* test credentials set."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = moto_s3.new_bucket()
    moto_s3.reset()
    yield S3Env(moto_s3, bucket)
    moto_s3.reset()
