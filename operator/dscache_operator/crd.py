"""The DatasetCache CRD, generated from `dscache.api` so the cluster and the CLI accept the same specs.

`crds/datasetcache.yaml` (and the chart's copy) is the output of `render()` (`dscache-operator crd >
crds/datasetcache.yaml`); a test fails when a committed file drifts. The JSON schemas of the spec and
status models become structural schemas (refs inlined, nullables dropped, no `additionalProperties:
false` beside `properties`); what pydantic validators check in Python is restated as CEL rules and
patterns the API server enforces.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from dscache.api.envnames import ENV_NAME_PATTERN
from dscache.api.names import MAX_SEGMENT, MAX_SOURCE, SEGMENT_PATTERN, SOURCE_PATTERN
from dscache.api.resource import (
    API_GROUP,
    API_VERSION,
    CATEGORIES,
    GROUP_VERSION,
    KIND,
    LIST_KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
)
from dscache.api.spec import FILE_SOURCE_IN_CLUSTER, K8S_NAME_PATTERN, QUANTITY_PATTERN, DatasetCacheSpec
from dscache.api.status import DatasetCacheStatus
from dscache.api.syspaths import MOUNT_PATH_FORM, REFUSED_MOUNT_PATH, SYSTEM_DIRS
from dscache.api.unsafeenv import REFUSED_PATTERN

# Bounds the model leaves open; the API server needs them to bound the cost of the CEL rules.
# At 1024 items the API server refused the envName rule ("estimated rule cost exceeds budget by factor
# of 1.5x", Kubernetes 1.36 on the test bed); 256 leaves room for the other rules.
MAX_VERSIONS = 256
MAX_STRING = 1024
MAX_ENV_NAME = 128  # the CEL rule over envName values matches a long pattern: its cost grows with both
MAX_ENV = 64  # variables of spec.prepare.env (a CEL rule matches each name)

# CEL rules per schema path (dotted, under spec), with the message the API server returns.
_RULES: dict[str, list[tuple[str, str]]] = {
    "": [
        (
            "!has(self.source.huggingFace) || !self.source.huggingFace.revisionFromVersion"
            " || self.layout == 'Files'",
            "source.huggingFace.revisionFromVersion requires layout: Files",
        ),
    ],
    "source": [
        (
            "[has(self.s3), has(self.gcs), has(self.azure), has(self.huggingFace), has(self.http),"
            " has(self.file)].filter(x, x).size() == 1",
            "exactly one of s3, gcs, azure, huggingFace, http, file must be set",
        ),
        ("!has(self.file)", FILE_SOURCE_IN_CLUSTER.removeprefix("spec.source.")),
    ],
    "versions[].envName": [
        (
            f"!self.matches('{REFUSED_PATTERN}')",
            "this variable would let the cache's source decide which code, programs or certificate "
            "authorities every pod of the cache loads (the dynamic loader's LD_*, PATH, HOME, PYTHON*, "
            "SSL_* and more: see dscache's docs/threat-model.md)",
        )
    ],
    "prepare.env[]": [
        (
            f"!self.name.matches('{REFUSED_PATTERN}')",
            "the injected init container may not get a variable that changes what code it runs (the "
            "dynamic loader's LD_*, PATH, HOME, PYTHON*, SSL_* and more: see dscache's docs/threat-model.md)",
        )
    ],
    "mountPath": [
        (
            f"!self.matches('{REFUSED_MOUNT_PATH}')",
            "mountPath may not be, lie under or contain a system directory "
            f"({', '.join(SYSTEM_DIRS)}): the cache's links would replace what programs load from there",
        )
    ],
    "volume": [
        ("has(self.claimName) != has(self.create)", "exactly one of claimName, create must be set"),
    ],
    "scratch": [
        (
            "(self.mode == 'HostPath') == has(self.hostPath)",
            "hostPath must be set exactly when mode is HostPath",
        ),
    ],
}

# Extra keywords per path: patterns and bounds pydantic checks in validators rather than in the schema.
_EXTRA: dict[str, dict[str, Any]] = {
    "versions": {
        "maxItems": MAX_VERSIONS,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["dataType", "source"],
    },
    "versions[].dataType": {"pattern": f"^{SEGMENT_PATTERN}$", "maxLength": MAX_SEGMENT},
    "versions[].source": {"pattern": f"^{SOURCE_PATTERN}$", "maxLength": MAX_SOURCE},
    "versions[].version": {"pattern": f"^{SEGMENT_PATTERN}$", "maxLength": MAX_SEGMENT},
    "versions[].envName": {"pattern": ENV_NAME_PATTERN, "maxLength": MAX_ENV_NAME},
    "volume.create.size": {"pattern": QUANTITY_PATTERN},
    "volume.claimName": {"pattern": K8S_NAME_PATTERN, "maxLength": 253},
    "source.s3.secretRef.name": {"pattern": K8S_NAME_PATTERN},
    "source.huggingFace.secretRef.name": {"pattern": K8S_NAME_PATTERN},
    "source.gcs.secretRef.name": {"pattern": K8S_NAME_PATTERN},
    "source.azure.secretRef.name": {"pattern": K8S_NAME_PATTERN},
    "mountPath": {"pattern": MOUNT_PATH_FORM},
    "scratch.sizeLimit": {"pattern": QUANTITY_PATTERN},
    "prepare.env": {"maxItems": MAX_ENV},
    "prepare.env[].name": {"maxLength": MAX_ENV_NAME},
}
# Why each map the spec keeps is a map (the API conventions prefer lists of named items), appended to
# its description; a test fails on a map without a reason here.
MAP_REASONS: dict[str, str] = {
    "install.resources": "A map because it is the core/v1 ResourceRequirements shape (requests and limits "
    "by resource name), which kubectl and every Kubernetes user already write that way.",
    "prepare.resources": "A map because it is the core/v1 ResourceRequirements shape (requests and limits "
    "by resource name), which kubectl and every Kubernetes user already write that way.",
    "install.nodeSelector": "A map because it is the core/v1 PodSpec nodeSelector shape (node label to "
    "value), copied to the pods as is.",
    "install.podLabels": "A map because labels are a map in every Kubernetes object (ObjectMeta.labels).",
    "install.podAnnotations": "A map because annotations are a map in every Kubernetes object "
    "(ObjectMeta.annotations).",
}
# The model allows no volume for laptop use; in a cluster the installer needs one.
_REQUIRED_IN_CLUSTER = ["volume"]

_DROP = {"title", "$defs", "additionalProperties"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Resolve `$ref`s and unwrap `anyOf: [X, null]` (optional fields) into X."""
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = dict(defs[node["$ref"].rsplit("/", 1)[1]])
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return _inline({**target, **rest}, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return _inline({**options[0], **rest}, defs)
    return {k: _inline(v, defs) for k, v in node.items()}


def _structural(
    node: dict[str, Any],
    path: str,
    extra: dict[str, dict[str, Any]],
    rules: dict[str, list[tuple[str, str]]],
    max_string: int | None,
) -> dict[str, Any]:
    """A structural-schema node: typed, described, no null defaults, map values as additionalProperties.

    `extra` and `rules` add keywords and CEL rules per dotted path; strings without an enum or bound
    get `maxLength: max_string` (if not None) so the API server can bound the cost of CEL rules.
    """
    out: dict[str, Any] = {
        k: v for k, v in node.items() if k not in _DROP and k not in ("properties", "default", "items")
    }
    if isinstance(node.get("items"), dict):
        out["items"] = _structural(node["items"], f"{path}[]", extra, rules, max_string)
    default = node.get("default")
    if default is not None and node.get("type") != "object":
        out["default"] = default
    if (
        max_string is not None
        and node.get("type") == "string"
        and "enum" not in out
        and "maxLength" not in out
    ):
        out["maxLength"] = max_string
    if "properties" in node:
        out["properties"] = {
            name: _structural(child, f"{path}.{name}".lstrip("."), extra, rules, max_string)
            for name, child in node["properties"].items()
        }
    elif isinstance(node.get("additionalProperties"), dict):
        child_path = f"{path}.*".lstrip(".")
        out["additionalProperties"] = _structural(
            node["additionalProperties"], child_path, extra, rules, max_string
        )
    out.update(extra.get(path, {}))
    if path in MAP_REASONS and isinstance(node.get("additionalProperties"), dict):
        out["description"] = f"{out.get('description', '')} {MAP_REASONS[path]}".strip()
    if rules.get(path):
        out["x-kubernetes-validations"] = [{"rule": r, "message": m} for r, m in rules[path]]
    return out


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True)
    inlined: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    return inlined


def spec_schema() -> dict[str, Any]:
    """The OpenAPI v3 schema of `.spec`, from `DatasetCacheSpec`."""
    raw = _model_schema(DatasetCacheSpec)
    out = _structural(raw, "", _EXTRA, _RULES, MAX_STRING)
    out["required"] = sorted({*raw.get("required", []), *_REQUIRED_IN_CLUSTER})
    return out


def status_schema() -> dict[str, Any]:
    """The OpenAPI v3 schema of `.status` (written by the operator and the installer), from
    `DatasetCacheStatus`. No CEL rules, so its strings need no bounds."""
    return _structural(_model_schema(DatasetCacheStatus), "", {}, {}, None)


def _obj(description: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": properties, **extra}


def _str(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    ready = '.status.conditions[?(@.type=="Ready")]'
    columns = [
        ("Ready", "string", f"{ready}.status", 0),
        ("Phase", "string", ".status.phase", 0),
        ("Progress", "string", ".status.progress.percent", 0),
        ("Size", "string", ".status.size", 0),
        ("Versions", "string", ".status.versionsReady", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0),
        ("Reason", "string", f"{ready}.reason", 1),
        ("Message", "string", f"{ready}.message", 1),
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": LIST_KIND,
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": n, "type": t, "jsonPath": p, **({"priority": w} if w else {})}
                        for n, t, p, w in columns
                    ],
                    "schema": {
                        "openAPIV3Schema": _obj(
                            "A versioned dataset cached on a shared volume by one installer Job, for pods "
                            "that link it at stable paths.",
                            {
                                "apiVersion": _str(f"API version: {GROUP_VERSION}."),
                                "kind": _str("DatasetCache."),
                                "metadata": {"type": "object"},
                                "spec": {
                                    **spec_schema(),
                                    "description": "Desired state: source, versions, volume.",
                                },
                                "status": status_schema(),
                            },
                            required=["spec"],
                        )
                    },
                }
            ],
        },
    }


def render() -> str:
    """The YAML of `crds/datasetcache.yaml`."""
    header = "# Generated by `dscache-operator crd` from dscache.api; do not edit by hand.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)
