"""The spec model: what a user writes in a DatasetCache manifest or on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dscache.api.manifest import load_manifest, source_from_url, spec_from_flags
from dscache.api.spec import SpecError, parse_spec

MANIFEST = """
apiVersion: dscache.io/v1alpha1
kind: DatasetCache
metadata:
  name: molmo-assets
  namespace: research
spec:
  source:
    s3:
      bucket: my-bucket
      prefix: mujoco
      endpoint: https://acct.r2.cloudflarestorage.com
      secretRef: {name: r2-creds}
  versions:
    objects: {thor: "20250101", objaverse/part1: v2}
    scenes: {ithor: "7"}
  volume: {claimName: datasets}
  linkStrategy: {scenes: perFile}
  envNames: {objects/thor: THOR_DIR}
"""


def test_full_manifest_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "dc.yaml"
    path.write_text("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---" + MANIFEST)
    dc = load_manifest(path)
    assert dc.ref_name == "research.molmo-assets"
    assert dc.spec.source.url() == "s3://my-bucket/mujoco"
    assert dc.spec.versions["objects"]["objaverse/part1"] == "v2"
    assert dc.spec.layout == "archives"
    assert dc.spec.install.parallelism == 4
    assert dc.spec.retention.on_delete == "Retain"
    assert dc.spec.link_strategy == {"scenes": "perFile"}


def test_json_manifest_is_accepted(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "dc.json"
    path.write_text(json.dumps(yaml.safe_load(MANIFEST)))
    assert load_manifest(path).metadata.name == "molmo-assets"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"source": {"s3": {"bucket": "b"}, "http": {"url": "http://x"}}}, "spec.source"),
        ({"source": {"s3": {}}}, "spec.source.s3.bucket"),
        ({"versions": {"objects": {"thor": "../etc"}}}, "spec.versions"),
        ({"versions": {"..": {"thor": "v1"}}}, "spec.versions"),
        ({"versions": {"objects": {"/thor": "v1"}}}, "spec.versions"),
        ({"versions": {"objects": {"thor/": "v1"}}}, "spec.versions"),
        ({"versions": {"objects": {"thor": "v" * 129}}}, "spec.versions"),
        ({"install": {"parallelism": 0}}, "spec.install.parallelism"),
        ({"volume": {"create": {"size": "lots"}}}, "spec.volume.create.size"),
        ({"linkStrategy": {"robots": "perFile"}}, "spec"),
        ({"envNames": {"objects/thor": "1BAD"}}, "spec.envNames"),
        ({"layout": "zip"}, "spec.layout"),
        ({"sourcee": {}}, "spec.sourcee"),
        ({"source": {"huggingFace": {"repo": "a/b", "revisionFromVersion": True}}}, "spec"),
    ],
)
def test_invalid_spec_names_the_field(patch: dict[str, object], field: str) -> None:
    doc: dict[str, object] = {"source": {"s3": {"bucket": "b"}}, "versions": {"objects": {"thor": "v1"}}}
    doc.update(patch)
    with pytest.raises(SpecError) as err:
        parse_spec(doc)
    assert f"{field}:" in str(err.value) or f"{field}." in str(err.value)


def test_manifest_errors_name_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "dc.yaml"
    path.write_text(MANIFEST.replace("bucket: my-bucket", "bucket: ''"))
    with pytest.raises(SpecError, match=r"dc.yaml: spec.source.s3.bucket"):
        load_manifest(path)
    path.write_text("kind: DatasetCache\n  bad: [indent")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_manifest(path)
    with pytest.raises(SpecError, match="cannot read"):
        load_manifest(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket/some/prefix/", "s3://bucket/some/prefix"),
        ("hf://datasets/allenai/molmospaces/mujoco@v2", "hf://datasets/allenai/molmospaces/mujoco@v2"),
        ("hf://models/org/model", "hf://models/org/model@main"),
        ("https://pub-x.r2.dev/", "https://pub-x.r2.dev"),
        ("file:///data/remote", "file:///data/remote"),
    ],
)
def test_source_urls_round_trip(url: str, expected: str) -> None:
    assert source_from_url(url).url() == expected


@pytest.mark.parametrize("url", ["ftp://x/y", "s3:///nobucket", "hf://spaces/a/b", "hf://datasets/onlyowner"])
def test_bad_source_urls_are_rejected(url: str) -> None:
    with pytest.raises(SpecError, match="--source"):
        source_from_url(url)


def test_flags_build_nested_versions_with_slash_in_source() -> None:
    spec = spec_from_flags("s3://b", "files", ["objects/objaverse/part1=v3", "scenes/ithor=7"])
    assert spec.versions == {"objects": {"objaverse/part1": "v3"}, "scenes": {"ithor": "7"}}
    assert spec.layout == "files"


@pytest.mark.parametrize("arg", ["objects=v1", "objects/thor", "objects/thor=", "/thor=v1"])
def test_malformed_version_flags(arg: str) -> None:
    with pytest.raises(SpecError, match="DATA_TYPE/SOURCE=VERSION"):
        spec_from_flags("s3://b", "archives", [arg])


def test_conflicting_version_flags() -> None:
    with pytest.raises(SpecError, match="conflicts"):
        spec_from_flags("s3://b", "archives", ["objects/thor=v1", "objects/thor=v2"])


def test_display_url_drops_credentials() -> None:
    source = source_from_url("https://user:pa55word@example.com/data?X-Amz-Signature=abc")
    shown = source.display_url()
    assert (
        "pa55word" not in shown and "Signature" not in shown and shown.startswith("https://example.com/data")
    )
