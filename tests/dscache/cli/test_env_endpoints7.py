"""Endpoint values that cannot work are refused up front, as one line naming the variable or field,
exit 2, before any request: whitespace anywhere (a URL is used as written, never stripped), no
host, port 0 or above 65535, credentials in an endpoint URL (never echoed). A manifest that names its
S3 endpoint does not read AWS_ENDPOINT_URL_S3 (not checked) and reads AWS_ENDPOINT_URL only for
credentials (checked, the line saying why)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dscache.cli.cli_helpers import assert_one_clean_line, run
from tests.servers.s3 import S3Env

BAD = [
    ("http://127.0.0.1:1 ", "spaces or control characters"),
    (" http://127.0.0.1:1", "spaces or control characters"),
    ("http://127.0.0.1:1\n", "spaces or control characters"),
    ("http://127.0.0.1\t:1", "spaces or control characters"),
    (" ", "spaces or control characters"),
    ("http://:9000", "no host"),
    ("http://127.0.0.1:0", "port is not a number from 1 to 65535"),
    ("http://127.0.0.1:65536", "port is not a number from 1 to 65535"),
    ("http://user:s3cret-pw@127.0.0.1:9000", "cannot carry credentials"),
]
SECRET = "s3cret-pw"


@pytest.fixture(autouse=True)
def _one_try(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were a value let through, fail after one refused connection rather than after eight."""
    monkeypatch.setenv("DSCACHE_RETRY_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")


@pytest.mark.parametrize(("value", "reason"), BAD)
@pytest.mark.parametrize(
    ("variable", "source"),
    [
        ("HF_ENDPOINT", "hf://datasets/o/r"),
        ("AWS_ENDPOINT_URL", "s3://b/p"),
        ("AWS_ENDPOINT_URL_S3", "s3://b/p"),
    ],
)
def test_ls_remote_refuses_an_unusable_endpoint_variable(
    variable: str, source: str, value: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    result = run("ls-remote", source)
    assert_one_clean_line(result, 2, f"environment variable {variable}=", reason)
    assert SECRET not in result.out + result.err


@pytest.mark.parametrize(("value", "reason"), BAD)
@pytest.mark.parametrize("kind", ["s3", "huggingFace"])
def test_install_refuses_an_unusable_endpoint_field(
    kind: str, value: str, reason: str, tmp_path: Path
) -> None:
    source = {
        "s3": "{s3: {bucket: b, endpoint: %s}}",
        "huggingFace": "{huggingFace: {repo: o/r, endpoint: %s}}",
    }
    manifest = tmp_path / "dc.yaml"
    manifest.write_text(
        "apiVersion: dscache.io/v1alpha1\nkind: DatasetCache\nmetadata: {name: t}\nspec:\n"
        f"  source: {source[kind] % json.dumps(value)}\n"  # a YAML double-quoted scalar
        "  versions: [{dataType: objects, source: thor, version: v1}]\n"
    )
    result = run("install", "-f", str(manifest), "--cache", str(tmp_path / "cache"))
    assert_one_clean_line(result, 2, f"spec.source.{kind}.endpoint", reason)
    assert SECRET not in result.out + result.err
    assert not (tmp_path / "cache").exists()


def _manifest(tmp_path: Path, s3: S3Env, *, anonymous: bool = False) -> Path:
    s3.put("data/objects/thor/v1/a.txt", b"hello")
    manifest = tmp_path / "s3.yaml"
    manifest.write_text(
        "apiVersion: dscache.io/v1alpha1\nkind: DatasetCache\nmetadata: {name: t, namespace: ml}\nspec:\n"
        f"  source: {{s3: {{bucket: {s3.bucket}, prefix: data, endpoint: '{s3.endpoint}',"
        f" anonymous: {str(anonymous).lower()}}}}}\n"
        "  layout: Files\n  versions: [{dataType: objects, source: thor, version: v1}]\n"
    )
    return manifest


def test_spec_endpoint_makes_aws_endpoint_url_s3_unread(
    s3: S3Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://:9000")  # no host: refused when read
    cache = tmp_path / "cache"
    cache.mkdir()
    result = run("install", "-f", str(_manifest(tmp_path, s3)), "--cache", str(cache))
    assert result.code == 0, result
    assert (cache / "objects" / "thor" / "v1" / "a.txt").read_bytes() == b"hello"


def test_spec_endpoint_still_checks_aws_endpoint_url_saying_why(
    s3: S3Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1 ")
    cache = tmp_path / "cache"
    cache.mkdir()
    result = run("install", "-f", str(_manifest(tmp_path, s3)), "--cache", str(cache))
    assert_one_clean_line(
        result,
        2,
        "environment variable AWS_ENDPOINT_URL=",
        "spaces or control characters",
        "spec.source.s3.endpoint is set, so S3 requests do not use it, but botocore also sends the "
        "requests that fetch credentials (STS: IRSA web identity, assumed roles) there",
    )
    assert not (cache / "objects").exists()
