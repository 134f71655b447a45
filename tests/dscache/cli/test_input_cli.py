"""What the CLI says about bad input a newcomer types: endpoints in the environment, bucket names
botocore refuses (h6-input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree

VERSION = ["--version", "objects/many=v1"]


@pytest.mark.parametrize(
    ("name", "value", "source", "reason"),
    [
        ("AWS_ENDPOINT_URL", "notaurl", "s3://bucket-1/x", "not an http:// or https:// URL"),
        ("AWS_ENDPOINT_URL_S3", "https://ACCOUNT_ID.example.com", "s3://bucket-1/x", "is not a host name"),
        ("HF_ENDPOINT", "https://[::1", "hf://datasets/o/r", "not a valid bracketed IPv6 address"),
        ("STORAGE_EMULATOR_HOST", "host:port", "gs://bucket/x", "its port is not a number"),
    ],
)
def test_an_unusable_endpoint_variable_is_one_line_naming_it_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, source: str, reason: str
) -> None:
    monkeypatch.setenv(name, value)
    cache = tmp_path / "c"
    result = run("install", "--cache", str(cache), "--source", source, *VERSION, "--dry-run")
    assert result.code == 2
    assert result.lines == [result.lines[0]] and result.lines[0].startswith(
        f"dscache: error: environment variable {name}={value!r}: "
    )
    assert reason in result.lines[0] and not cache.exists()


def test_a_connection_strings_bad_blob_endpoint_is_exit_2_and_not_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", "AccountName=acct1;AccountKey=c2VjcmV0;BlobEndpoint=http://[::1/a"
    )
    cache = tmp_path / "c"
    result = run("install", "--cache", str(cache), "--source", "az://acct1/data/x", *VERSION)
    assert result.code == 2
    assert result.lines == [
        "dscache: error: AZURE_STORAGE_CONNECTION_STRING: its BlobEndpoint is not a usable URL: its host is "
        "not a valid bracketed IPv6 address (write e.g. http://[::1]:9000)"
    ]
    assert not (cache / "objects").exists()


def test_botocores_parameter_refusal_is_shown_whole_on_one_line(tmp_path: Path) -> None:
    manifest = tmp_path / "arn.yaml"
    manifest.write_text(
        "apiVersion: dscache.io/v1alpha1\nkind: DatasetCache\nmetadata: {name: a}\nspec:\n"
        "  source: {s3: {bucket: 'arn:nope', endpoint: 'http://127.0.0.1:9', anonymous: true}}\n"
        "  versions: [{dataType: objects, source: many, version: v1}]\n"
    )
    result = run("install", "-f", str(manifest), "--cache", str(tmp_path / "c"), "--json")
    error = json.loads(result.out.splitlines()[-1])
    assert (result.code, error["exitCode"]) == (2, 2)
    assert 'Invalid bucket name "arn:nope": Bucket name must match' in error["message"]
    assert "\n" not in error["message"]


STALE_ENDPOINTS = {
    "AWS_ENDPOINT_URL": "notaurl",
    "AWS_ENDPOINT_URL_S3": "https://ACCOUNT_ID.example.com",
    "HF_ENDPOINT": "https://[::1",
    "STORAGE_EMULATOR_HOST": "host:port",
}


def test_stale_endpoints_of_other_remotes_do_not_stop_a_local_install_publish_or_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in STALE_ENDPOINTS.items():
        monkeypatch.setenv(name, value)
    tree = make_tree(tmp_path / "tree", {"a/x.txt": 3000, "b.bin": 2000})
    remote = tmp_path / "remote"
    published = run("publish", str(tree), "--to", f"file://{remote}", "--version", "objects/many=v1")
    assert published.code == 0, published.lines
    listed = run("ls-remote", f"file://{remote}", "--json")
    assert listed.code == 0, listed.lines
    assert [v["version"] for v in json.loads(listed.out)["versions"]] == ["v1"]
    for source in (f"file://{remote}", str(remote)):
        cache = tmp_path / f"cache-{len(source)}"
        installed = run("install", "--cache", str(cache), "--source", source, *VERSION)
        assert installed.code == 0, installed.lines
        assert (cache / "objects/many/v1/a/x.txt").stat().st_size == 3000


@pytest.mark.parametrize(
    ("command", "source"),
    [("ls-remote", "s3://bucket-1/x"), ("publish", "s3://bucket-1/x"), ("ls-remote", "gs://bucket/x")],
)
def test_a_stale_endpoint_of_the_remote_used_still_stops_publish_and_ls_remote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, source: str
) -> None:
    for name, value in STALE_ENDPOINTS.items():
        monkeypatch.setenv(name, value)
    name = "STORAGE_EMULATOR_HOST" if source.startswith("gs:") else "AWS_ENDPOINT_URL"
    argv = [source] if command == "ls-remote" else [str(tmp_path), "--to", source, *VERSION]
    result = run(command, *argv)
    assert result.code == 2
    assert len(result.lines) == 1
    assert result.lines[0].startswith(f"dscache: error: environment variable {name}=")
