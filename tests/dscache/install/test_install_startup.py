"""Start-up cost of `dscache install`: a download from S3 loads botocore, which it reads with, and not
boto3 (with s3transfer, 35-95 ms of CPU before the first request), which only uploads need; the
workers of a Hub install do not ask the Hub again for the commit the installer pinned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import CachePaths
from tests.conftest import S3Env
from tests.factories import dataset_snapshot
from tests.servers.hub import FakeHub

KEY = VersionKey("objects", "thor", "v1")
PROBE = """
import json, sys
from dscache.cli.app import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_an_s3_install_reads_with_botocore_and_never_imports_boto3(tmp_path: Path, s3: S3Env) -> None:
    s3.put(f"models/{KEY.rel}/a.bin", b"a" * 5000)
    s3.put(f"models/{KEY.rel}/sub/b.txt", b"bee")
    cache = tmp_path / "cache"
    args = ["install", "--cache", str(cache), "--source", f"s3://{s3.bucket}/models", "--layout", "files"]
    args += ["--version", str(KEY)]
    env = {**os.environ, "AWS_ENDPOINT_URL": s3.endpoint}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True, env=env
    )
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["code"] == 0, proc.stderr
    want = {"a.bin": b"a" * 5000, "sub": None, "sub/b.txt": b"bee"}
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == want
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert "botocore" in loaded
    assert loaded & {"boto3", "s3transfer", "huggingface_hub"} == set()


def test_hub_workers_reuse_the_commit_the_installer_pinned(
    tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"{KEY.rel}/{name}.bin": name.encode() * 1000 for name in ("a", "b", "c", "d")}
    hub.commit("org/data", files)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    cache = tmp_path / "cache"
    args = ["install", "--cache", str(cache), "--source", "hf://datasets/org/data", "--layout", "files"]
    assert main([*args, "--version", str(KEY), "--jobs", "4"]) == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == {
        f"{name}.bin": name.encode() * 1000 for name in ("a", "b", "c", "d")
    }
    lookups = hub.log.find("/api/datasets/org/data/revision/*")
    assert [r.path.rsplit("/", 1)[1] for r in lookups] == ["main"]
