"""The spec model: what a user writes in a DatasetCache manifest or on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dscache.api.manifest import load_manifest, source_from_url, spec_from_flags
from dscache.api.spec import SpecError, parse_spec
from tests.factories import version_items

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
  - {dataType: objects, source: thor, version: "20250101", envName: THOR_DIR}
  - {dataType: objects, source: objaverse/part1, version: v2}
  - {dataType: scenes, source: ithor, version: "7", link: PerFile}
  volume: {claimName: datasets}
"""


def test_full_manifest_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "dc.yaml"
    path.write_text("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---" + MANIFEST)
    dc = load_manifest(path)
    assert dc.ref_name == "research.molmo-assets"
    assert dc.spec.source.url() == "s3://my-bucket/mujoco"
    assert dc.spec.version_map() == {
        "objects": {"thor": "20250101", "objaverse/part1": "v2"},
        "scenes": {"ithor": "7"},
    }
    assert dc.spec.layout == "Archives"
    assert dc.spec.install.parallelism == 4
    assert dc.spec.retention.on_delete == "Retain"
    assert [(v.slot, v.link, v.env_name) for v in dc.spec.versions] == [
        ("objects/thor", "Directory", "THOR_DIR"),
        ("objects/objaverse/part1", "Directory", None),
        ("scenes/ithor", "PerFile", None),
    ]


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
        ({"versions": version_items("objects/thor=../etc")}, "spec.versions[0].version"),
        ({"versions": version_items("../thor=v1")}, "spec.versions[0].dataType"),
        ({"versions": version_items("objects//thor=v1")}, "spec.versions[0].source"),
        ({"versions": version_items("objects/thor/=v1")}, "spec.versions[0].source"),
        ({"versions": version_items("objects/thor=" + "v" * 129)}, "spec.versions[0].version"),
        ({"versions": []}, "spec.versions"),
        ({"install": {"parallelism": 0}}, "spec.install.parallelism"),
        ({"volume": {"create": {"size": "lots"}}}, "spec.volume.create.size"),
        ({"versions": version_items("o/a=v1", "o/b=v1", link={"o/b": "Symlink"})}, "spec.versions[1].link"),
        (
            {"versions": version_items("o/a=v1", "o/b=v1", envName={"o/b": "1BAD"})},
            "spec.versions[1].envName",
        ),
        ({"layout": "zip"}, "spec.layout"),
        ({"sourcee": {}}, "spec.sourcee"),
        ({"source": {"huggingFace": {"repo": "a/b", "revisionFromVersion": True}}}, "spec"),
    ],
)
def test_invalid_spec_names_the_field(patch: dict[str, object], field: str) -> None:
    doc: dict[str, object] = {"source": {"s3": {"bucket": "b"}}, "versions": version_items("objects/thor=v1")}
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


def test_flags_build_version_items_with_slash_in_source() -> None:
    spec = spec_from_flags("s3://b", "files", ["objects/objaverse/part1=v3", "scenes/ithor=7"])
    assert spec.model_dump(by_alias=True, exclude_none=True)["versions"] == [
        {"dataType": "objects", "source": "objaverse/part1", "version": "v3", "link": "Directory"},
        {"dataType": "scenes", "source": "ithor", "version": "7", "link": "Directory"},
    ]
    assert spec.layout == "Files"


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


def _second(name: str, namespace: str = "research") -> str:
    return MANIFEST.replace("name: molmo-assets", f"name: {name}").replace(
        "namespace: research", f"namespace: {namespace}"
    )


def test_several_datasetcaches_are_refused_unless_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(MANIFEST + "---" + _second("other") + "---" + _second("other", "team-b"))
    with pytest.raises(SpecError) as err:
        load_manifest(path)
    assert str(err.value) == (
        f"{path}: 3 DatasetCache documents (research/molmo-assets, research/other, team-b/other): "
        "choose one with --name NAME"
    )
    assert load_manifest(path, "molmo-assets").ref_name == "research.molmo-assets"
    assert load_manifest(path, "team-b/other").ref_name == "team-b.other"
    with pytest.raises(SpecError, match=r"2 DatasetCache named 'other' .*use --name NAMESPACE/NAME"):
        load_manifest(path, "other")
    with pytest.raises(SpecError, match=r"no DatasetCache named 'nope' \(it holds research/molmo-assets, "):
        load_manifest(path, "nope")


def test_a_kind_list_is_read_like_kubectl_does(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "list.yaml"
    items = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, yaml.safe_load(MANIFEST)]
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    assert load_manifest(path).ref_name == "research.molmo-assets"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "{path}: empty: no document with kind: DatasetCache"),
        ("---\n---\n# only comments\n", "{path}: empty: no document with kind: DatasetCache"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
            "apiVersion: apps/v1\nkind: Deployment\n",
            "{path}: no document with kind: DatasetCache (found: ConfigMap, Deployment)",
        ),
        ("- just\n- a list\n", "{path}:1: a document is a list, not a Kubernetes object"),
        (
            "kind: DatasetCache\nspec:\n  source: {s3: {bucket: b}\n  layout: Files\n",
            "{path}:4:3: not valid YAML/JSON",
        ),
        ("kind: DatasetCache\nmetadata:\n\tname: x\n", "{path}:3:1: not valid YAML/JSON"),
        ('{"kind": "DatasetCache", "spec": [}', "{path}:1:35: not valid YAML/JSON"),
    ],
)
def test_manifest_problems_name_the_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "dc.yaml"
    path.write_text(content)
    with pytest.raises(SpecError) as err:
        load_manifest(path)
    assert str(err.value).startswith(message.format(path=path)), str(err.value)


def test_a_manifest_that_is_not_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dc.yaml"
    path.write_bytes(b"kind: DatasetCache\nmetadata: {name: caf\xe9}\n")
    with pytest.raises(SpecError, match=r"dc.yaml: not UTF-8 text \(byte 39\)"):
        load_manifest(path)


def test_validation_errors_in_a_multi_document_file_name_the_document_line(tmp_path: Path) -> None:
    path = tmp_path / "dc.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---"
        + MANIFEST.replace("bucket: my-bucket", "bucket: ''")
    )
    with pytest.raises(SpecError, match=r"dc.yaml:5: spec.source.s3.bucket"):
        load_manifest(path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file://host/data", "a file URL names a local directory and takes no host ('host')"),
        ("file://localhost/data", "takes no host ('localhost')"),
        ("file://data/remote", "takes no host ('data')"),  # the classic two-slash mistake
        ("file:data/remote", "the path must be absolute"),
        ("file:///data?x=1", "a query string or fragment has no meaning"),
        ("s3://bucket/prefix?versionId=3", "a query string or fragment has no meaning"),
        ("hf://datasets/org/repo#main", "a query string or fragment has no meaning"),
        ("s3://AKIAXXXX:s3cr3tvalue@bucket/prefix", "no credentials in the URL"),
        ("http:///no-host/path", "missing host"),
        ("ftp://bucket/x", "scheme must be s3://, gs://, az://, hf://, http(s):// or file:// (got 'ftp')"),
    ],
)
def test_bad_source_urls_say_what_to_write(url: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        source_from_url(url, flag="--to")
    assert str(err.value).startswith("--to ") and message in str(err.value), str(err.value)
    assert "s3cr3tvalue" not in str(err.value)


@pytest.mark.parametrize(
    ("url", "path"), [("file:///data/remote/", "/data/remote"), ("file:/data/remote", "/data/remote")]
)
def test_local_file_urls(url: str, path: str) -> None:
    source = source_from_url(url)
    assert source.file is not None and source.file.path == path


def test_hugging_face_patterns_select_files_of_the_files_layout() -> None:
    hf = {"repo": "org/bert", "allowPatterns": ["*.safetensors", "*.json"], "ignorePatterns": ["old/"]}
    doc = {"source": {"huggingFace": hf}, "layout": "Files", "versions": version_items("models/bert=v1")}
    source = parse_spec(doc).source.hugging_face
    assert source is not None
    assert source.allow_patterns == ["*.safetensors", "*.json"] and source.ignore_patterns == ["old/"]
    with pytest.raises(SpecError, match=r"spec.source.huggingFace.allowPatterns\[0\]: "):
        parse_spec({**doc, "source": {"huggingFace": {**hf, "allowPatterns": [""]}}})
    with pytest.raises(
        SpecError, match=r"^spec: source.huggingFace.allowPatterns/ignorePatterns .*layout: Files"
    ):
        parse_spec({**doc, "layout": "Archives"})


BASE = {"source": {"s3": {"bucket": "b"}}}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"layout": "files"}, "spec.layout: 'files' is now 'Files'"),
        ({"layout": "archives"}, "spec.layout: 'archives' is now 'Archives'"),
        ({"scratch": {"mode": "emptyDir"}}, "spec.scratch.mode: 'emptyDir' is now 'EmptyDir'"),
        ({"scratch": {"mode": "none"}}, "spec.scratch.mode: 'none' is now 'None'"),
        (
            {"versions": version_items("o/a=v1", "o/b=v1", link={"o/b": "perFile"})},
            "spec.versions[1].link: 'perFile' is now 'PerFile'",
        ),
        (
            {"source": {"huggingFace": {"repo": "a/b", "repoType": "model"}}},
            "spec.source.huggingFace.repoType: 'model' is now 'Model'",
        ),
    ],
)
def test_an_old_lowercase_enum_value_names_the_new_spelling(patch: dict[str, object], message: str) -> None:
    doc: dict[str, object] = {**BASE, "versions": version_items("objects/thor=v1"), **patch}
    with pytest.raises(SpecError) as err:
        parse_spec(doc)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"versions": {"objects": {"thor": "v1"}}},
            "spec.versions is now a list of {dataType, source, version} items (optional link and envName), "
            "e.g. [{dataType: objects, source: thor, version: '2024-01'}]",
        ),
        (
            {"linkStrategy": {"objects": "perFile"}},
            "spec.linkStrategy is now spec.versions[].link (Directory or PerFile) on each version",
        ),
        ({"envNames": {"objects/thor": "X"}}, "spec.envNames is now spec.versions[].envName on each version"),
    ],
)
def test_the_old_maps_get_one_line_saying_where_they_went(patch: dict[str, object], message: str) -> None:
    doc: dict[str, object] = {**BASE, "versions": version_items("objects/thor=v1"), **patch}
    with pytest.raises(SpecError) as err:
        parse_spec(doc)
    assert str(err.value) == message


def test_a_repeated_data_type_and_source_is_refused_naming_both_items() -> None:
    doc = {**BASE, "versions": version_items("objects/thor=v1", "scenes/ithor=7", "objects/thor=v2")}
    with pytest.raises(SpecError) as err:
        parse_spec(doc)
    assert str(err.value) == (
        "spec.versions: versions[2] repeats dataType/source objects/thor of versions[0]: list each once"
    )


def test_the_same_source_under_two_data_types_is_two_items() -> None:
    spec = parse_spec({**BASE, "versions": version_items("objects/thor=v1", "scenes/thor=v1")})
    assert spec.version_map() == {"objects": {"thor": "v1"}, "scenes": {"thor": "v1"}}


def test_an_env_name_error_names_the_item() -> None:
    doc = {**BASE, "versions": version_items("o/a=v1", "o/b=v1", "o/c=v1", envName={"o/c": "has-dash"})}
    with pytest.raises(SpecError) as err:
        parse_spec(doc)
    assert str(err.value) == "spec.versions[2].envName: 'has-dash' is not a valid environment variable name"


@pytest.mark.parametrize(
    ("versions", "env", "message"),
    [
        (
            ("objects/a-b=v1", "objects/a_b=v1"),
            {},
            "spec.versions: versions[1] (objects/a_b) gets environment variable DSCACHE_OBJECTS_A_B, as "
            "versions[0] (objects/a-b) does: set envName on one of them",
        ),
        (
            ("objects/thor=v1", "scenes/ithor=7"),
            {"scenes/ithor": "DSCACHE_OBJECTS_THOR"},
            "spec.versions: versions[1] (scenes/ithor) gets environment variable DSCACHE_OBJECTS_THOR, as "
            "versions[0] (objects/thor) does: set envName on one of them",
        ),
        (
            ("objects/thor=v1", "scenes/ithor=7"),
            {"objects/thor": "DATA", "scenes/ithor": "DATA"},
            "spec.versions: versions[1] (scenes/ithor) gets environment variable DATA, as "
            "versions[0] (objects/thor) does: set envName on one of them",
        ),
    ],
)
def test_two_versions_with_one_env_name_are_refused_naming_both(
    versions: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec({**BASE, "versions": version_items(*versions, envName=env)})
    assert str(err.value) == message


def test_an_env_name_clash_is_resolved_by_naming_one() -> None:
    doc = {
        **BASE,
        "versions": version_items("objects/a-b=v1", "objects/a_b=v1", envName={"objects/a_b": "AB"}),
    }
    assert [i.env_name for i in parse_spec(doc).versions] == [None, "AB"]


def test_version_flags_whose_env_names_clash_are_refused_naming_both_flags() -> None:
    with pytest.raises(SpecError) as err:
        spec_from_flags("s3://b/p", "archives", ["objects/a-b=v1", "objects/a_b=v1"])
    assert str(err.value) == (
        "--version 'objects/a_b=v1' and --version 'objects/a-b=v1' both get environment variable "
        "DSCACHE_OBJECTS_A_B: rename a source, or use -f with a manifest that sets envName"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            MANIFEST.replace("  volume:", "  layout: Files\n  layout: Archives\n  volume:"),
            "{path}:19:3: not valid YAML/JSON: duplicate key 'layout' (first on line 18)",
        ),
        (
            '{"kind": "DatasetCache", "kind": "ConfigMap"}',
            "{path}:1:26: not valid YAML/JSON: duplicate key 'kind' (first on line 1)",
        ),
    ],
)
def test_a_duplicate_key_in_a_manifest_is_refused_naming_key_and_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "dc.yaml"
    path.write_text(content)
    with pytest.raises(SpecError) as err:
        load_manifest(path)
    assert str(err.value) == message.format(path=path)


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "dc.yaml"
    path.write_text(
        MANIFEST.replace(
            "  volume: {claimName: datasets}",
            "  volume:\n    <<: {claimName: other}\n    claimName: datasets",
        )
    )
    spec = load_manifest(path).spec
    assert spec.volume is not None and spec.volume.claim_name == "datasets"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("file:///tmp/my%20remote", "/tmp/my remote"),
        ("file:///tmp/caf%C3%A9/", "/tmp/café"),
    ],
)
def test_file_urls_are_percent_decoded(url: str, shown: str) -> None:
    source = source_from_url(url)
    assert source.file is not None and source.file.path == shown


@pytest.mark.parametrize("url", ["https://host.example/my%20data", "s3://bucket/my%20prefix"])
def test_other_urls_keep_their_percent_escapes(url: str) -> None:
    assert source_from_url(url).display_url() == url
