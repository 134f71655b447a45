"""The DatasetCache CRD, generated from the spec model so the cluster and the CLI accept the same specs.

`crds/datasetcache.yaml` is the output of `render()` (`dscache-operator crd > crds/datasetcache.yaml`);
a test fails when the committed file drifts. The model's JSON schema is turned into a structural
schema (refs inlined, nullables dropped, no `additionalProperties: false` beside `properties`); what
pydantic validators check in Python is restated as CEL rules and patterns the API server enforces.
"""

from __future__ import annotations

from typing import Any

import yaml

from dscache.api import spec as spec_model
from dscache.api.names import SEGMENT_PATTERN, SOURCE_PATTERN
from dscache.api.spec import API_GROUP, API_VERSION, KIND, DatasetCacheSpec

PLURAL = "datasetcaches"
SHORT_NAMES = ["dsc"]
PHASES = ["Pending", "Queued", "Installing", "Ready", "Failed"]

# Bounds the model leaves open; the API server needs them to bound the cost of the CEL rules.
MAX_DATA_TYPES = 64
MAX_SOURCES = 256
MAX_STRING = 1024

# CEL rules per schema path (dotted, under spec), with the message the API server returns.
_RULES: dict[str, list[tuple[str, str]]] = {
    "": [
        (
            "!has(self.source.huggingFace) || !self.source.huggingFace.revisionFromVersion"
            " || self.layout == 'files'",
            "source.huggingFace.revisionFromVersion requires layout: files",
        ),
        (
            "!has(self.linkStrategy) || self.linkStrategy.all(dt, dt in self.versions)",
            "linkStrategy names a data type which is not in versions",
        ),
        (
            "!has(self.envNames) || self.envNames.all(s, s.indexOf('/') > 0"
            " && s.substring(0, s.indexOf('/')) in self.versions"
            " && s.substring(s.indexOf('/') + 1) in self.versions[s.substring(0, s.indexOf('/'))])",
            "envNames names a dataType/source which is not in versions",
        ),
    ],
    "source": [
        (
            "[has(self.s3), has(self.huggingFace), has(self.http), has(self.file)].filter(x, x).size() == 1",
            "exactly one of s3, huggingFace, http, file must be set",
        )
    ],
    "volume": [
        ("has(self.claimName) != has(self.create)", "exactly one of claimName, create must be set"),
    ],
    "scratch": [
        (
            "(self.mode == 'hostPath') == has(self.hostPath)",
            "hostPath must be set exactly when mode is hostPath",
        ),
    ],
    "versions": [
        (f"self.all(dt, dt.matches('^{SEGMENT_PATTERN}$'))", "data type names must be safe path segments"),
        (
            f"self.all(dt, self[dt].all(src, size(src) <= 255 && src.matches('^{SOURCE_PATTERN}$')))",
            "source names must be '/'-separated safe path segments (at most 255 characters)",
        ),
    ],
}

# Extra keywords per path: patterns and bounds pydantic checks in validators rather than in the schema.
_EXTRA: dict[str, dict[str, Any]] = {
    "versions": {"maxProperties": MAX_DATA_TYPES},
    "versions.*": {"minProperties": 1, "maxProperties": MAX_SOURCES},
    "versions.*.*": {"pattern": f"^{SEGMENT_PATTERN}$"},
    "volume.create.size": {"pattern": spec_model._QUANTITY.pattern},
    "volume.claimName": {"pattern": spec_model._K8S_NAME.pattern, "maxLength": 253},
    "source.s3.secretRef.name": {"pattern": spec_model._K8S_NAME.pattern},
    "source.huggingFace.secretRef.name": {"pattern": spec_model._K8S_NAME.pattern},
    "envNames": {"maxProperties": MAX_DATA_TYPES * 4},
    "envNames.*": {"pattern": spec_model._ENV_NAME.pattern},
    "linkStrategy": {"maxProperties": MAX_DATA_TYPES},
    "scratch.sizeLimit": {"pattern": spec_model._QUANTITY.pattern},
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


def _structural(node: dict[str, Any], path: str) -> dict[str, Any]:
    """A structural-schema node: typed, described, no null defaults, map values as additionalProperties."""
    out: dict[str, Any] = {
        k: v for k, v in node.items() if k not in _DROP and k not in ("properties", "default")
    }
    default = node.get("default")
    if default is not None and node.get("type") != "object":
        out["default"] = default
    if node.get("type") == "string" and "enum" not in out and "maxLength" not in out:
        out["maxLength"] = MAX_STRING
    if "properties" in node:
        out["properties"] = {
            name: _structural(child, f"{path}.{name}".lstrip("."))
            for name, child in node["properties"].items()
        }
    elif isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(node["additionalProperties"], f"{path}.*".lstrip("."))
    out.update(_EXTRA.get(path, {}))
    if path == "":
        out["required"] = sorted({*node.get("required", []), *_REQUIRED_IN_CLUSTER})
    rules = _RULES.get(path)
    if rules:
        out["x-kubernetes-validations"] = [{"rule": r, "message": m} for r, m in rules]
    return out


def spec_schema() -> dict[str, Any]:
    """The OpenAPI v3 schema of `.spec`, from `DatasetCacheSpec`."""
    raw = DatasetCacheSpec.model_json_schema(by_alias=True)
    return _structural(_inline(raw, raw.get("$defs", {})), "")


def _obj(description: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": properties, **extra}


def _int(description: str) -> dict[str, Any]:
    return {"type": "integer", "format": "int64", "minimum": 0, "description": description}


def _str(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def status_schema() -> dict[str, Any]:
    """The OpenAPI v3 schema of `.status`, written by the operator and (progress) by the installer."""
    condition = _obj(
        "A condition per the Kubernetes API conventions.",
        {
            "type": _str("Condition type: Ready (versions installed and the ref switched) or Installing."),
            "status": _str("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "reason": _str("CamelCase reason for the last transition."),
            "message": _str("Human-readable detail."),
            "lastTransitionTime": _str("When status last changed.", format="date-time"),
            "observedGeneration": _int("The .metadata.generation the condition was set for."),
        },
        required=["type", "status"],
    )
    installed = _obj(
        "A version published on the volume and pointed at by this resource's ref.",
        {
            "dataType": _str("Data type."),
            "source": _str("Source."),
            "version": _str("Version."),
            "revision": _str(
                "Resolved remote revision (S3 ETag set digest, HF commit) if the remote has one."
            ),
            "digest": _str("sha256 over the installed archives' names, sizes and digests."),
            "files": _int("Number of files in the version."),
            "bytes": _int("Bytes of the version on the volume."),
        },
        required=["dataType", "source", "version"],
    )
    progress = _obj(
        "Progress of the running install, reported by the installer (throttled).",
        {
            "bytesDone": _int("Bytes transferred so far (including resumed work)."),
            "bytesTotal": _int("Bytes to transfer."),
            "archivesDone": _int("Archives (or files) done."),
            "archivesTotal": _int("Archives (or files) to install."),
            "percent": _str("bytesDone/bytesTotal as a percentage, for kubectl get."),
        },
    )
    return _obj(
        "Observed state of the DatasetCache.",
        {
            "phase": _str("Pending, Queued, Installing, Ready or Failed.", enum=PHASES),
            "message": _str("What is happening or what failed, without secrets."),
            "observedGeneration": _int("The .metadata.generation the phase was computed for."),
            "conditions": {
                "type": "array",
                "description": "Ready (and Installing) conditions; `kubectl wait --for=condition=Ready`.",
                "items": condition,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "installed": {
                "type": "array",
                "description": "Versions installed for the current spec, with resolved revisions and sizes.",
                "items": installed,
            },
            "progress": progress,
            "size": _str("Total size of the installed versions, human-readable."),
            "versionsReady": _str("Installed versions out of those in the spec, e.g. 2/2."),
            "claimName": _str("The PVC holding the cache."),
            "installJob": _str("The installer Job for the current spec."),
        },
    )


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    columns = [
        ("Phase", "string", ".status.phase"),
        ("Progress", "string", ".status.progress.percent"),
        ("Size", "string", ".status.size"),
        ("Versions", "string", ".status.versionsReady"),
        ("Age", "date", ".metadata.creationTimestamp"),
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
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": SHORT_NAMES,
                "categories": ["dscache"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": n, "type": t, "jsonPath": p} for n, t, p in columns
                    ],
                    "schema": {
                        "openAPIV3Schema": _obj(
                            "A versioned dataset cached on a shared volume by one installer Job, for pods "
                            "that link it at stable paths.",
                            {
                                "apiVersion": _str("API version: dscache.io/v1alpha1."),
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
    header = "# Generated by `dscache-operator crd` from dscache.api.spec; do not edit by hand.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)
