"""The committed CRD is the generator's output, and the generator covers the whole spec model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from dscache.api.spec import DatasetCacheSpec
from dscache.api.status import PHASES, DatasetCacheStatus
from dscache_operator.crd import build_crd, render, spec_schema, status_schema

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
    assert conditions["items"]["required"] == ["type", "status"]
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


def test_printer_columns_and_status_subresource() -> None:
    version = build_crd()["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Phase",
        "Progress",
        "Size",
        "Versions",
        "Age",
    ]
    assert version["subresources"] == {"status": {}}
    conditions = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
