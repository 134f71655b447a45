"""Publish then install through GCS (fake-gcs-server) and Azure Blob Storage (Azurite), over HTTP
behind fault proxies: both layouts, the CLI's URL forms and the spec's endpoints, digests the stores
publish, objects without them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import CachePaths
from dscache.store.records import read_complete
from tests.factories import content_for, dataset_snapshot, make_tree, tree_snapshot
from tests.servers.azure import ACCOUNT, AzureEnv
from tests.servers.gcs import GcsEnv

KEY = VersionKey("objects", "thor", "v1")
TREE = {"a/x.txt": 100, "a/y.bin": 150_000, "b/z.json": 7, "c/empty": 0}


def manifest(tmp_path: Path, source: str, layout: str = "Archives") -> Path:
    path = tmp_path / "dc.yaml"
    path.write_text(
        f"""
apiVersion: dscache.io/v1alpha1
kind: DatasetCache
metadata: {{name: dc}}
spec:
  source: {source}
  layout: {layout}
  versions: [{{dataType: objects, source: thor, version: v1}}]
"""
    )
    return path


def publish(tree: Path, url: str) -> int:
    return main(["publish", str(tree), "--to", url, "--version", str(KEY), "--archive-size", "2048"])


def test_gcs_publish_then_install_archives(
    tmp_path: Path, gcs: GcsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path / "tree", TREE)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint)
    assert publish(tree, f"gs://{gcs.bucket}/mujoco") == 0
    assert gcs.server.log.find("/upload/storage/v1/b/*", method="POST")
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    source = f'{{gcs: {{bucket: {gcs.bucket}, prefix: mujoco, endpoint: "{gcs.endpoint}"}}}}'
    cache = tmp_path / "cache"
    gcs.server.faults.drop(after=40, times=2, path=gcs.media_glob("*.tar.zst"))
    assert main(["install", "-f", str(manifest(tmp_path, source)), "--cache", str(cache)]) == 0
    version = CachePaths(cache).version_dir(KEY)
    assert dataset_snapshot(version) == tree_snapshot(tree)
    record = read_complete(version)
    assert record is not None and record.remote == f"gs://{gcs.bucket}/mujoco"
    reads = gcs.server.log.find(gcs.media_glob("*.tar.zst"), method="GET")
    assert [r.fault for r in reads].count("drop") == 2
    resumed = [r for r in reads if r.range is not None and not r.range.startswith("bytes=0-")]
    assert len(resumed) == 2 and all("ifGenerationMatch=" in r.query for r in resumed)


def test_gcs_files_are_verified_by_the_md5_gcs_publishes(
    tmp_path: Path, gcs: GcsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    data = content_for("only", 50_000)
    gcs.put(f"{KEY.rel}/only.bin", data)
    gcs.put(f"{KEY.rel}/composed.bin", content_for("composed", 30_000), composite=True)
    source = f'{{gcs: {{bucket: {gcs.bucket}, endpoint: "{gcs.endpoint}"}}}}'
    path = manifest(tmp_path, source, "Files")
    gcs.server.faults.corrupt(times=1, path=gcs.media_glob("*only.bin"))
    assert main(["install", "-f", str(path), "--cache", str(tmp_path / "once")]) == 0
    version = CachePaths(tmp_path / "once").version_dir(KEY)
    assert (version / "only.bin").read_bytes() == data
    assert (version / "composed.bin").read_bytes() == content_for("composed", 30_000)
    gcs.server.faults.corrupt(times=None, path=gcs.media_glob("*only.bin"))
    assert main(["install", "-f", str(path), "--cache", str(tmp_path / "always")]) == 1
    err = capsys.readouterr().err
    assert f"does not match the remote ETag {hashlib.md5(data).hexdigest()}" in err
    assert not CachePaths(tmp_path / "always").version_dir(KEY).exists()


def test_azure_publish_then_install_archives_from_the_account_url(
    tmp_path: Path, azure: AzureEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path / "tree", TREE)
    monkeypatch.delenv("AZURE_STORAGE_KEY")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azure.server.connection_string())
    assert publish(tree, f"az://{ACCOUNT}/{azure.container}/mujoco") == 0
    uploaded = azure.server.service().get_container_client(azure.container).list_blobs()
    assert all(b.content_settings.content_md5 for b in uploaded)  # publish always sets Content-MD5
    cache = tmp_path / "cache"
    azure.server.faults.truncate(after=40, times=2, path=azure.blob_glob("mujoco/*.tar.zst"))
    args = ["install", "--cache", str(cache), "--source", f"az://{ACCOUNT}/{azure.container}/mujoco"]
    assert main([*args, "--version", str(KEY)]) == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(tree)
    reads = azure.server.log.find(azure.blob_glob("mujoco/*.tar.zst"), method="GET")
    resumed = [r for r in reads if r.range is not None and not r.range.startswith("bytes=0-")]
    assert resumed and all(r.headers.get("if-match") for r in resumed)


def test_azure_files_layout_verified_by_content_md5_and_blobs_without_it(
    tmp_path: Path, azure: AzureEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_tree(tmp_path / "tree", TREE)
    for path in sorted(tree.rglob("*")):
        if path.is_file():
            azure.put(f"models/{KEY.rel}/{path.relative_to(tree).as_posix()}", path.read_bytes())
    azure.put(f"models/{KEY.rel}/blocks.bin", content_for("blocks", 20_000), md5=False)
    where = f"account: {ACCOUNT}, container: {azure.container}, prefix: models"
    source = f'{{azure: {{{where}, endpoint: "{azure.endpoint}"}}}}'
    path = manifest(tmp_path, source, "Files")
    assert main(["install", "-f", str(path), "--cache", str(tmp_path / "cache")]) == 0
    version = CachePaths(tmp_path / "cache").version_dir(KEY)
    expected = {**tree_snapshot(tree), "blocks.bin": content_for("blocks", 20_000)}
    assert dataset_snapshot(version) == expected
    record = read_complete(version)
    assert record is not None and record.layout == "files"
    azure.server.faults.corrupt(times=None, path=azure.blob_glob("*/y.bin"))
    assert main(["install", "-f", str(path), "--cache", str(tmp_path / "bad")]) == 1
    assert "md5" in capsys.readouterr().err
