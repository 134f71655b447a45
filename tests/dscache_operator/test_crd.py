"""The committed CRD is the generator's output, and the generator covers the whole spec model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from dscache.api.spec import DatasetCacheSpec
from dscache.api.status import PHASES, DatasetCacheStatus
from dscache_operator.crd import MAP_REASONS, build_crd, render, spec_schema, status_schema

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crd_matches_the_generator() -> None:
    committed = (ROOT / "crds" / "datasetcache.yaml").read_text()
    assert committed == render(), (
        "crds/datasetcache.yaml is stale: run `dscache-operator crd > crds/datasetcache.yaml`"
    )


def test_the_charts_crd_is_the_same_file() -> None:
    chart = (ROOT / "charts" / "dscache" / "files" / "crds" / "datasetcache.yaml").read_text()
    assert chart == render(), (
        "charts/dscache/files/crds/datasetcache.yaml is stale: copy crds/datasetcache.yaml"
    )


def _nested(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model inside an annotation (`list[X] | None` -> X, True), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    for arg in get_args(annotation):
        model, in_list = _nested(arg)
        if model is not None:
            return model, in_list or get_origin(annotation) is list
    return None, False


def _model_paths(model: type[BaseModel], path: str = "") -> set[str]:
    """Every field of `model` and of the models it nests, by wire name (`.installed[].dataType`)."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        here = f"{path}.{info.alias or name}"
        out.add(here)
        nested, in_list = _nested(info.annotation)
        if nested is not None:
            out |= _model_paths(nested, f"{here}[]" if in_list else here)
    return out


def test_status_schema_is_generated_from_the_status_model() -> None:
    schema_paths = {p for p, _ in _walk(status_schema(), "") if p and not p.endswith("[]")}
    assert schema_paths == _model_paths(DatasetCacheStatus)
    assert status_schema()["properties"]["phase"]["enum"] == list(PHASES)
    conditions = status_schema()["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert conditions["items"]["required"] == ["type", "status", "lastTransitionTime", "reason", "message"]
    fields = conditions["items"]["properties"]
    assert fields["reason"]["pattern"] == "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    assert (fields["reason"]["minLength"], fields["reason"]["maxLength"]) == (1, 1024)
    assert fields["message"]["maxLength"] == 32768
    assert fields["type"]["maxLength"] == 316
    assert fields["lastTransitionTime"]["format"] == "date-time"
    assert fields["observedGeneration"]["minimum"] == 0
    assert status_schema()["properties"]["installed"]["items"]["properties"]["bytes"] == {
        "type": "integer",
        "format": "int64",
        "minimum": 0,
        "description": "Bytes of the version on the volume.",
    }


def _walk(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, child in node.get("properties", {}).items():
        out += _walk(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        out += _walk(node["additionalProperties"], f"{path}.*")
    if isinstance(node.get("items"), dict):
        out += _walk(node["items"], f"{path}[]")
    return out


def test_schema_is_structural_and_every_field_is_described() -> None:
    root = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(root, ""):
        if node.get("x-kubernetes-int-or-string"):  # the one untyped node structural schemas allow
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            assert "type" not in node, path
            continue
        assert "type" in node, f"{path}: structural schemas type every node"
        assert not {"$ref", "anyOf", "title"} & node.keys(), path
        assert not ("properties" in node and "additionalProperties" in node), path
        if (
            path.count(".") >= 1
            and not path.endswith("*")
            and not path.endswith("[]")
            and path != ".metadata"
        ):
            assert node.get("description"), f"{path} has no description"


def test_every_model_field_is_in_the_schema() -> None:
    props = spec_schema()["properties"]
    fields = {f.alias or name for name, f in DatasetCacheSpec.model_fields.items()}
    assert fields == set(props)
    assert set(props["source"]["properties"]) == {"s3", "gcs", "azure", "huggingFace", "http", "file"}
    assert props["volume"]["x-kubernetes-validations"][0]["rule"] == "has(self.claimName) != has(self.create)"
    assert "volume" in spec_schema()["required"]


def test_versions_are_a_list_keyed_by_data_type_and_source() -> None:
    versions = spec_schema()["properties"]["versions"]
    assert versions["type"] == "array" and versions["minItems"] == 1
    assert versions["x-kubernetes-list-type"] == "map"
    assert versions["x-kubernetes-list-map-keys"] == ["dataType", "source"]
    item = versions["items"]
    assert item["required"] == ["dataType", "source", "version"]
    assert set(item["properties"]) == {"dataType", "source", "version", "link", "envName"}
    assert item["properties"]["link"]["enum"] == ["Directory", "PerFile"]
    assert item["properties"]["link"]["default"] == "Directory"


def test_every_enum_is_camel_case() -> None:
    enums = [(p, n["enum"]) for p, n in _walk(spec_schema(), "") if "enum" in n]
    assert {p: e for p, e in enums} == {
        ".source.huggingFace.repoType": ["Dataset", "Model"],
        ".layout": ["Archives", "Files"],
        ".versions[].link": ["Directory", "PerFile"],
        ".retention.onDelete": ["Retain", "Delete"],
        ".scratch.mode": ["None", "EmptyDir", "HostPath"],
        # core/v1 Toleration's own enums, spelled as the core API spells them
        ".install.tolerations[].operator": ["Exists", "Equal"],
        ".install.tolerations[].effect": ["NoSchedule", "PreferNoSchedule", "NoExecute"],
    }


def test_every_map_left_in_the_spec_says_why_it_is_a_map() -> None:
    maps = [(p, n) for p, n in _walk(spec_schema(), "") if isinstance(n.get("additionalProperties"), dict)]
    for path, node in maps:
        if path.endswith(".*"):
            continue  # a map's values, described by the map
        assert node["description"].endswith(MAP_REASONS[path.lstrip(".")]), path


def test_printer_columns_and_status_subresource() -> None:
    version = build_crd()["spec"]["versions"][0]
    ready = '.status.conditions[?(@.type=="Ready")]'
    assert [
        (c["name"], c["jsonPath"], c.get("priority", 0)) for c in version["additionalPrinterColumns"]
    ] == [
        ("Ready", f"{ready}.status", 0),
        ("Phase", ".status.phase", 0),
        ("Progress", ".status.progress.percent", 0),
        ("Size", ".status.size", 0),
        ("Versions", ".status.versionsReady", 0),
        ("Age", ".metadata.creationTimestamp", 0),
        ("Reason", f"{ready}.reason", 1),
        ("Message", f"{ready}.message", 1),
    ]
    assert version["subresources"] == {"status": {}}
    conditions = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
