"""GcsRemote specifics against fake-gcs-server over HTTP: x-goog-hash digests, composite objects,
crc32c over whole objects (resumed ones too), STORAGE_EMULATOR_HOST, a service account key in
GOOGLE_APPLICATION_CREDENTIALS (tokens from a token endpoint on 127.0.0.1) and what a refusal says.
The shared cases are in test_conformance.py and test_object_stores.py."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dscache.api.manifest import source_from_url
from dscache.api.names import VersionKey
from dscache.api.spec import Source
from dscache.install.ingest import VerificationError, fetch_file
from dscache.install.staging import StagingPaths
from dscache.layouts.files import plan_files
from dscache.remotes.base import Pin, RemoteError
from dscache.remotes.factory import open_remote
from dscache.remotes.gcs import GcsRemote, endpoint_from, gcs_hashes
from dscache.remotes.retry import RetryPolicy
from tests.servers.gcs import FakeMetadata, GcsEnv, TokenServer

DATA = b"gcs object bytes " * 5000


def test_x_goog_hash_names_the_whole_objects_digests() -> None:
    assert gcs_hashes("crc32c=n03x6A==,md5=XUFAKrxLKna5cZ2REBfFkg==") == {
        "crc32c": "9f4df1e8",
        "md5": hashlib.md5(b"hello").hexdigest(),
    }
    assert gcs_hashes("crc32c=n03x6A==") == {"crc32c": "9f4df1e8"}  # a composite object
    assert gcs_hashes("md5=not base64!, sha1=abc") == {}


def test_endpoint_comes_from_the_spec_then_the_emulator_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert endpoint_from(None) is None
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")
    assert endpoint_from(None) == "http://127.0.0.1:4443"
    assert endpoint_from("https://gcs.internal/") == "https://gcs.internal"


def test_storage_emulator_host_is_honoured(gcs: GcsEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    gcs.put("k/v.bin", DATA)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint.removeprefix("http://"))
    remote = open_remote(source_from_url(f"gs://{gcs.bucket}/k"))
    assert isinstance(remote, GcsRemote) and remote.url == f"gs://{gcs.bucket}/k"
    assert remote.read_bytes("v.bin") == DATA
    assert gcs.server.log.find(gcs.media_glob("k/v.bin"))
    assert all("authorization" not in r.headers for r in gcs.server.log.all())  # an emulator: anonymous


def test_reads_record_md5_and_crc32c(gcs: GcsEnv) -> None:
    gcs.put("k/v.bin", DATA)
    remote = open_remote(Source.model_validate(gcs.source("k")))
    pin = Pin()
    assert b"".join(remote.stream("v.bin", pin=pin)) == DATA
    assert pin.checksums["md5"] == hashlib.md5(DATA).hexdigest()
    assert set(pin.checksums) == {"md5", "crc32c"}
    assert pin.identity.version_id == str(gcs.generations["k/v.bin"])


def test_composite_objects_vouch_for_no_md5(gcs: GcsEnv) -> None:
    gcs.put("k/composed.bin", DATA, composite=True)
    remote = open_remote(Source.model_validate(gcs.source("k")))
    (listed,) = remote.list_files("")
    assert listed.md5 is None and listed.size == len(DATA)
    pin = Pin(listed.identity)
    assert b"".join(remote.stream("composed.bin", pin=pin)) == DATA
    assert set(pin.checksums) == {"crc32c"}


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    with TokenServer() as server:
        yield server


def _key_document(token_uri: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "dscache-test",
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": "reader@dscache-test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": token_uri,
        }
    )


def test_a_service_account_key_in_the_environment_signs_every_read(
    gcs: GcsEnv, token_server: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    gcs.put("k/v.bin", DATA)
    document = _key_document(f"{token_server.url}/token")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", document)  # as the operator passes a Secret key
    remote = open_remote(Source.model_validate(gcs.source("k")))
    gcs.server.faults.drop(after=10_000, path=gcs.media_glob("k/v.bin"))
    assert remote.read_bytes("v.bin") == DATA
    reads = gcs.server.log.find(gcs.media_glob("k/v.bin"))
    assert len(reads) == 2 and {r.headers.get("authorization") for r in reads} == {
        f"Bearer {token_server.token}"
    }
    assert len(token_server.log.find("/token", method="POST")) == 1  # one token, reused until it expires
    gcs.server.faults.status(403, times=None, path="*")
    with pytest.raises(RemoteError, match="access denied") as err:
        remote.read_bytes("v.bin")
    with pytest.raises(RemoteError, match=r"access denied .* set GOOGLE_APPLICATION_CREDENTIALS") as listed:
        remote.list_files("")
    for message in (str(err.value), str(listed.value)):
        assert token_server.token not in message and "PRIVATE KEY" not in message


def test_a_key_that_is_no_credential_is_one_clear_line(gcs: GcsEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = '{"type": "service_account", "private_key": "s3cr3t-key", "client_email": "a@b"}'
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", bad)
    with pytest.raises(RemoteError, match=r"^GOOGLE_APPLICATION_CREDENTIALS: not usable credentials") as err:
        open_remote(Source.model_validate(gcs.source("k")))
    assert "s3cr3t-key" not in str(err.value)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", '{"type": "external_account", "audience": "x"}')
    with pytest.raises(RemoteError, match="must be a service account key"):
        open_remote(Source.model_validate(gcs.source("k")))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "{not json")
    with pytest.raises(RemoteError, match="neither a file path nor a JSON key document"):
        open_remote(Source.model_validate(gcs.source("k")))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")
    with pytest.raises(RemoteError, match=r"=/nonexistent/key\.json: not a usable credentials file"):
        open_remote(Source.model_validate(gcs.source("k")))  # never quietly anonymous


def test_anonymous_reads_send_no_credentials(
    gcs: GcsEnv, token_server: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    gcs.put("pub/open.bin", b"public")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", _key_document(f"{token_server.url}/token"))
    source = Source.model_validate({"gcs": {**gcs.source("pub")["gcs"], "anonymous": True}})
    assert open_remote(source).read_bytes("open.bin") == b"public"
    assert all("authorization" not in r.headers for r in gcs.server.log.all())
    assert token_server.log.all() == []


def test_gke_workload_identity_needs_no_secret(gcs: GcsEnv) -> None:
    """No key, no emulator variable: application default credentials find the metadata server (here
    on 127.0.0.1; google-auth reads where it is at import, hence a child process)."""
    gcs.put("k/v.bin", DATA)
    with FakeMetadata() as metadata:
        host = f"127.0.0.1:{metadata.port}"
        env = {k: v for k, v in os.environ.items() if k != "NO_GCE_CHECK"}
        env.update(GCE_METADATA_HOST=host, GCE_METADATA_IP=host, PYTHONPATH=os.pathsep.join(sys.path))
        code = (
            "import hashlib, json, sys\n"
            "from dscache.api.spec import Source\n"
            "from dscache.remotes.factory import open_remote\n"
            "remote = open_remote(Source.model_validate(json.loads(sys.argv[1])))\n"
            "print(hashlib.sha256(remote.read_bytes('v.bin')).hexdigest())\n"
        )
        source = json.dumps(gcs.source("k"))
        proc = subprocess.run(
            [sys.executable, "-c", code, source],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == hashlib.sha256(DATA).hexdigest()
        assert metadata.log.find("*/service-accounts/default/token")
    (read,) = gcs.server.log.find(gcs.media_glob("k/v.bin"))
    assert read.headers["authorization"] == f"Bearer {metadata.token}"


def _stored_crc32c(gcs: GcsEnv, key: str) -> str:
    """The crc32c the store keeps for an object (hex), as the GCS JSON API states it."""
    blob = gcs.server.client().bucket(gcs.bucket).get_blob(key)
    return base64.b64decode(blob.crc32c).hex()


def _unlocked() -> None:
    """The fence of a transfer that runs without the writer lock (nothing else writes here)."""


def test_a_resumed_composite_object_is_checked_by_crc32c_over_all_its_bytes(
    gcs: GcsEnv, tmp_path: Path
) -> None:
    """A composite object has a crc32c and no md5. A download cut short leaves a partial file for
    the next run; a byte of it that went bad on disk is caught, because the crc32c covers the bytes
    read back from the partial file as well as the streamed rest, and the object is fetched again."""
    data = bytes(range(256)) * 2000  # 512000 bytes
    gcs.put("k/objects/thor/v1/composed.bin", data, composite=True)
    stored = _stored_crc32c(gcs, "k/objects/thor/v1/composed.bin")
    impatient = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01)
    remote = GcsRemote(gcs.bucket, "k", endpoint=gcs.endpoint, policy=impatient)
    (item,) = plan_files(remote, VersionKey("objects", "thor", "v1"), "objects/thor/v1").items
    staging = StagingPaths(tmp_path / "staging")
    media = gcs.media_glob("k/objects/thor/v1/composed.bin")
    gcs.server.faults.drop(after=200_000, path=media)
    gcs.server.faults.status(503, times=None, path=media)
    with pytest.raises(RemoteError, match="gave up after 2 attempt"):
        fetch_file(remote, item, staging, lambda n: None, fence=_unlocked)
    (token,) = staging.file_attempts(item.name)
    partial = staging.part(item.name, token)
    kept = partial.stat().st_size
    assert 0 < kept < len(data)
    with open(partial, "r+b") as fh:  # one byte of the kept prefix goes bad
        fh.seek(1000)
        fh.write(bytes([data[1000] ^ 0xFF]))
    gcs.server.reset()
    result = fetch_file(remote, item, staging, lambda n: None, fence=_unlocked)
    assert (staging.files / item.name).read_bytes() == data and result.size == len(data)
    reads = gcs.server.log.find(media, method="GET")
    # resumed from the partial, refused by the crc32c, fetched anew
    assert [r.range for r in reads] == [f"bytes={kept}-511999", "bytes=0-511999"]
    assert stored == "fbdc10ba"  # Castagnoli CRC of `data`, as fake-gcs-server computed it


def test_a_corrupted_composite_object_fails_with_its_crc32c(gcs: GcsEnv, tmp_path: Path) -> None:
    data = bytes(range(256)) * 2000
    gcs.put("k/objects/thor/v1/composed.bin", data, composite=True)
    remote = GcsRemote(gcs.bucket, "k", endpoint=gcs.endpoint)
    (item,) = plan_files(remote, VersionKey("objects", "thor", "v1"), "objects/thor/v1").items
    gcs.server.faults.corrupt(times=None, path=gcs.media_glob("k/objects/thor/v1/composed.bin"))
    with pytest.raises(VerificationError) as err:
        fetch_file(remote, item, StagingPaths(tmp_path / "s"), lambda n: None, fence=_unlocked)
    message = str(err.value)
    assert message.startswith("composed.bin: crc32c ") and "\n" not in message
    assert message.endswith("does not match the remote stored checksum fbdc10ba")
