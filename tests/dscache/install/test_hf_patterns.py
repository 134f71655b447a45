"""Hugging Face `files` layout: `allowPatterns`/`ignorePatterns` select the files of a version (as
snapshot_download does) before anything is downloaded; the version holds and verifies exactly those."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import INVENTORY, CachePaths
from dscache.store.records import read_complete
from tests.factories import dataset_snapshot
from tests.servers.hub import FakeHub

MODEL = {
    "model.safetensors": bytes(30_000),
    "shards/model-00002.safetensors": bytes(20_000),
    "pytorch_model.bin": bytes(50_000),
    "config.json": b'{"hidden": 8}',
    "tokenizer.json": b"{}",
    "README.md": b"# bert",
}


def manifest(tmp_path: Path, hub: FakeHub, layout: str, patterns: str) -> Path:
    path = tmp_path / "dc.yaml"
    per_version = ", revisionFromVersion: true" if layout == "files" else ""
    hf = f'repo: org/bert, repoType: Model{per_version}, endpoint: "{hub.endpoint}"'
    path.write_text(
        f"""
apiVersion: dscache.io/v1alpha1
kind: DatasetCache
metadata: {{name: bert}}
spec:
  source: {{huggingFace: {{{hf}, {patterns}}}}}
  layout: {layout.capitalize()}
  versions: [{{dataType: models, source: bert, version: v1}}]
"""
    )
    return path


def test_allow_patterns_install_exactly_the_matching_files(tmp_path: Path, hub: FakeHub) -> None:
    hub.commit("org/bert", MODEL, repo_type="model")
    hub.tag("org/bert", "v1", repo_type="model")
    path = manifest(tmp_path, hub, "files", 'allowPatterns: ["*.safetensors", "*.json"]')
    cache = tmp_path / "cache"
    hub.log.clear()
    assert main(["install", "-f", str(path), "--cache", str(cache)]) == 0
    version = CachePaths(cache).version_dir(VersionKey("models", "bert", "v1"))
    assert dataset_snapshot(version) == {
        "model.safetensors": bytes(30_000),
        "shards": None,
        "shards/model-00002.safetensors": bytes(20_000),
        "config.json": b'{"hidden": 8}',
        "tokenizer.json": b"{}",
    }
    fetched = sorted(r.path.rsplit("/", 1)[1] for r in hub.log.find("*/resolve/*", "GET"))
    assert fetched == ["config.json", "model-00002.safetensors", "model.safetensors", "tokenizer.json"]
    inventory = json.loads((version / INVENTORY).read_text())
    assert sorted(inventory["files"]) == [
        "config.json",
        "model.safetensors",
        "shards/model-00002.safetensors",
        "tokenizer.json",
    ]
    record = read_complete(version)
    assert record is not None and record.files == 4 and record.bytes == 50_000 + 13 + 2
    assert main(["verify", "--cache", str(cache)]) == 0


def test_ignore_patterns_from_the_command_line(
    tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.commit("org/bert", {f"models/bert/v1/{p}": d for p, d in MODEL.items()}, repo_type="model")
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    cache = tmp_path / "cache"
    args = ["install", "--cache", str(cache), "--source", "hf://models/org/bert", "--layout", "files"]
    args += ["--version", "models/bert=v1", "--allow-pattern", "*.safetensors", "--allow-pattern", "*.md"]
    assert main([*args, "--ignore-pattern", "shards/"]) == 0
    version = CachePaths(cache).version_dir(VersionKey("models", "bert", "v1"))
    assert dataset_snapshot(version) == {"model.safetensors": bytes(30_000), "README.md": b"# bert"}


def test_patterns_are_refused_for_the_archives_layout(
    tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    path = manifest(tmp_path, hub, "archives", 'ignorePatterns: ["*.bin"]')
    capsys.readouterr()
    assert main(["install", "-f", str(path), "--cache", str(tmp_path / "cache")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "source.huggingFace.allowPatterns/ignorePatterns" in line and "layout: Files" in line
    assert not (tmp_path / "cache" / "models").exists()


def test_patterns_that_select_nothing_name_the_patterns(
    tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.commit("org/bert", MODEL, repo_type="model")
    hub.tag("org/bert", "v1", repo_type="model")
    path = manifest(tmp_path, hub, "files", 'allowPatterns: ["*.gguf"]')
    capsys.readouterr()
    assert main(["install", "-f", str(path), "--cache", str(tmp_path / "cache")]) != 0
    err = capsys.readouterr().err
    assert "none of the 7 files" in err and "['*.gguf']" in err and "Traceback" not in err
