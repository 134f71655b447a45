"""AzureRemote specifics against Azurite over HTTP: which credential is used (connection string, key,
SAS, workload identity, none), what byte reads carry, Content-MD5 and blobs without it, and what a
refusal says. The shared cases are in test_object_stores.py."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from dscache.api.manifest import source_from_url
from dscache.api.spec import Source
from dscache.remotes.azure import AZURITE_KEY, Access, AzureRemote, parse_connection_string, resolve_access
from dscache.remotes.base import Pin, RemoteError
from dscache.remotes.factory import open_remote
from tests.servers.azure import ACCOUNT, AzureEnv

DATA = b"azure blob bytes " * 5000
CS_KEY = (
    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5PQ==;EndpointSuffix=core.chinacloudapi.cn"
)
CS_SAS = "BlobEndpoint=http://10.0.0.1/acct;SharedAccessSignature=?sv=1&sig=x"
WI = {
    "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
    "AZURE_CLIENT_ID": "c",
}
PUBLIC = "https://acct.blob.core.windows.net"


@pytest.mark.parametrize(
    ("env", "endpoint", "anonymous", "expected"),
    [
        ({"AZURE_STORAGE_CONNECTION_STRING": CS_KEY}, None, False,
         Access("https://acct.blob.core.chinacloudapi.cn", "key", key="a2V5PQ==")),
        ({"AZURE_STORAGE_CONNECTION_STRING": CS_SAS}, "https://private.example/acct", False,
         Access("https://private.example/acct", "sas", sas="sv=1&sig=x")),
        ({"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}, None, False,
         Access("http://127.0.0.1:10000/devstoreaccount1", "key", key=AZURITE_KEY)),
        ({"AZURE_STORAGE_KEY": "k3y"}, None, False, Access(PUBLIC, "key", key="k3y")),
        ({"AZURE_STORAGE_SAS_TOKEN": "?sp=rl&sig=s"}, None, False, Access(PUBLIC, "sas", sas="sp=rl&sig=s")),
        ({**WI, "AZURE_TENANT_ID": "t"}, None, False, Access(PUBLIC, "token")),
        ({}, None, False, Access(PUBLIC, "anonymous")),
        ({"AZURE_STORAGE_KEY": "k3y"}, None, True, Access(PUBLIC, "anonymous")),
    ],
    ids=["conn-key-suffix", "conn-sas-spec-endpoint", "dev-storage", "key", "sas", "workload-identity",
         "none", "anonymous"],
)  # fmt: skip
def test_which_credential_and_endpoint(
    env: dict[str, str], endpoint: str | None, anonymous: bool, expected: Access
) -> None:
    account = "devstoreaccount1" if "UseDevelopmentStorage" in str(env) else "acct"
    assert resolve_access(account, endpoint, anonymous, env) == expected


def test_a_connection_string_of_another_account_is_refused() -> None:
    with pytest.raises(RemoteError, match="is for account 'acct', the source names 'other'") as err:
        resolve_access("other", None, False, {"AZURE_STORAGE_CONNECTION_STRING": CS_KEY})
    assert "a2V5PQ==" not in str(err.value)
    with pytest.raises(RemoteError, match="neither AccountKey nor SharedAccessSignature"):
        resolve_access("acct", None, False, {"AZURE_STORAGE_CONNECTION_STRING": "AccountName=acct"})
    assert parse_connection_string("AccountKey=a=b==;X=") == {"accountkey": "a=b==", "x": ""}


def test_with_an_account_key_reads_carry_a_read_only_sas(azure: AzureEnv) -> None:
    azure.put("k/v.bin", DATA)
    remote = open_remote(Source.model_validate(azure.source("k")))
    assert isinstance(remote, AzureRemote)
    assert remote.read_bytes("v.bin") == DATA
    (read,) = azure.server.log.find(azure.blob_glob("k/v.bin"), method="GET")
    query = parse_qs(read.query)
    assert query["sp"] == ["r"] and query["sr"] == ["c"] and query["sig"]
    assert "authorization" not in read.headers and read.headers["x-ms-version"]


def test_a_connection_string_gives_account_and_endpoint(
    azure: AzureEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    azure.put("k/v.bin", DATA)
    monkeypatch.delenv("AZURE_STORAGE_KEY")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azure.server.connection_string())
    remote = open_remote(source_from_url(f"az://{ACCOUNT}/{azure.container}/k"))
    assert remote.read_bytes("v.bin") == DATA
    assert [f.path for f in remote.list_files("")] == ["v.bin"]
    assert azure.server.log.find(azure.blob_glob("k/v.bin"))


def test_a_sas_token_from_the_environment(azure: AzureEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    azure.put("k/v.bin", DATA)
    sas = generate_container_sas(
        ACCOUNT, azure.container, account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    monkeypatch.delenv("AZURE_STORAGE_KEY")
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", sas)
    remote = open_remote(Source.model_validate(azure.source("k")))
    assert [f.path for f in remote.list_files("")] == ["v.bin"]
    assert remote.read_bytes("v.bin") == DATA
    azure.server.faults.status(500, times=None, path=azure.blob_glob("k/v.bin"))
    with pytest.raises(RemoteError) as err:
        remote.read_bytes("v.bin")
    assert parse_qs(sas)["sig"][0] not in str(err.value)


def test_blobs_without_content_md5_vouch_for_nothing(azure: AzureEnv) -> None:
    azure.put("k/blocks.bin", DATA, md5=False)
    remote = open_remote(Source.model_validate(azure.source("k")))
    (listed,) = remote.list_files("")
    assert listed.md5 is None and listed.identity.etag
    pin = Pin(listed.identity)
    assert b"".join(remote.stream("blocks.bin", pin=pin)) == DATA
    assert pin.checksums == {}
    azure.put("k/whole.bin", DATA)
    whole = Pin()
    assert b"".join(remote.stream("whole.bin", 5, 10, pin=whole)) == DATA[5:15]
    assert whole.checksums == {"md5": hashlib.md5(DATA).hexdigest()}


def test_a_wrong_key_is_access_denied_without_the_key(
    azure: AzureEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    azure.put("k/v.bin", DATA)
    wrong = "d3Jvbmcta2V5LXRoYXQtaXMtbG9uZy1lbm91Z2g="
    monkeypatch.setenv("AZURE_STORAGE_KEY", wrong)
    remote = open_remote(Source.model_validate(azure.source("k")))
    with pytest.raises(RemoteError, match="access denied; set AZURE_STORAGE_CONNECTION_STRING") as listed:
        remote.list_files("")
    with pytest.raises(RemoteError, match="access denied") as read:
        remote.read_bytes("v.bin")
    for err in (listed, read):
        assert wrong not in str(err.value) and "sig=" not in str(err.value)


def test_https_account_urls_are_azure_sources() -> None:
    source = source_from_url("https://myacct.blob.core.windows.net/data/mujoco/")
    assert source.azure is not None
    assert (source.azure.account, source.azure.container, source.azure.prefix) == ("myacct", "data", "mujoco")
    assert source.url() == "az://myacct/data/mujoco"
    assert source_from_url("https://myacct.blob.core.windows.net/data/x?sv=1&sig=s").http is not None
