"""Shared fixtures: real servers on 127.0.0.1 (HTTP files, fake Hugging Face Hub, moto S3) and an
environment that keeps tests fast (tiny retry backoff) and away from real credentials and endpoints.

    def test_x(http_server):            # FileServer serving http_server.root at http_server.url
    def test_y(hub):                    # FakeHub at hub.endpoint; hub.create_repo / commit / tag
    def test_z(s3):                     # S3Env: s3.bucket on s3.endpoint (moto behind a fault proxy)
    def test_g(gcs):                    # GcsEnv: gcs.bucket on fake-gcs-server behind a fault proxy
    def test_a(azure):                  # AzureEnv: azure.container on Azurite behind a fault proxy

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
from typing import Any

import pytest

# Before anything imports huggingface_hub (it reads these at import time): no user token, no cache.
_HF_HOME = tempfile.mkdtemp(prefix="dscache-test-hf-")
atexit.register(shutil.rmtree, _HF_HOME, True)
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HUGGING_FACE_HUB_TOKEN", None)
# Before anything imports google.auth (it reads these at import time): never probe a metadata server
# (traffic stays on 127.0.0.1) and never read the user's gcloud login.
_GCLOUD = tempfile.mkdtemp(prefix="dscache-test-gcloud-")
atexit.register(shutil.rmtree, _GCLOUD, True)
os.environ["NO_GCE_CHECK"] = "true"
os.environ["GCE_METADATA_HOST"] = os.environ["GCE_METADATA_IP"] = "127.0.0.1:9"
os.environ["CLOUDSDK_CONFIG"] = _GCLOUD

from dscache.remotes.azure import AZURITE_KEY  # noqa: E402
from tests.servers.azure import AzureEnv, Azurite  # noqa: E402
from tests.servers.files import FileServer  # noqa: E402
from tests.servers.gcs import FakeGcs, GcsEnv  # noqa: E402
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
_CLOUD_VARS = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "STORAGE_EMULATOR_HOST",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`pytest -n N --dist loadgroup` (the test command in README.md): every test below tests/cluster/
    goes to one worker, with the one test bed (two beds on one machine share the 127.200.0.0/16
    service range), while the other workers take the rest of the suite, test by test.

    xdist's own loadgroup reads `xdist_group` marks by renaming each item's nodeid, which pytest 9 no
    longer lets it do (every test became its own group); this scheduler groups by path instead."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneBedScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/cluster" if nodeid.startswith("tests/cluster/") else nodeid

    return OneBedScheduling(config, log)


@pytest.fixture(autouse=True)
def _test_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fast, bounded retries and no ambient credentials or endpoints."""
    monkeypatch.setenv("DSCACHE_RETRY_ATTEMPTS", "5")
    monkeypatch.setenv("DSCACHE_RETRY_BASE_DELAY", "0.001")
    monkeypatch.setenv("DSCACHE_RETRY_MAX_DELAY", "0.01")
    monkeypatch.setenv("DSCACHE_RETRY_DEADLINE", "30")
    monkeypatch.setenv("DSCACHE_CONNECT_TIMEOUT", "5")
    monkeypatch.setenv("DSCACHE_READ_TIMEOUT", "10")
    for var in (*_AWS_VARS, *_CLOUD_VARS, "HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
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


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGcs]:
    """One fake-gcs-server (+ fault proxy) for the session; use the `gcs` fixture in tests."""
    server = FakeGcs().start_in(tmp_path_factory.mktemp("fake-gcs"))
    yield server
    server.stop()


@pytest.fixture
def gcs(fake_gcs: FakeGcs) -> Iterator[GcsEnv]:
    """A fresh bucket on the shared fake-gcs-server, faults and log reset (no credentials: the
    endpoint is an emulator)."""
    bucket = fake_gcs.new_bucket()
    fake_gcs.reset()
    yield GcsEnv(fake_gcs, bucket)
    fake_gcs.reset()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite Blob service (+ fault proxy) for the session; use the `azure` fixture in tests."""
    server = Azurite().start_in(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture
def azure(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureEnv]:
    """A fresh container on the shared Azurite, faults and log reset, its key in AZURE_STORAGE_KEY."""
    monkeypatch.setenv("AZURE_STORAGE_KEY", AZURITE_KEY)
    container = azurite.new_container()
    azurite.reset()
    yield AzureEnv(azurite, container)
    azurite.reset()
