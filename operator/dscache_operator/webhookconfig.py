"""Dev mode's webhook configurations: what the chart registers by Service, here by URL to this process.

Named as kopf named them when it managed them (`<peering>.dscache.io`, webhooks
`mutate-pods.<peering>.dscache.io` and `validate-datasetcaches.<peering>.dscache.io`), with the rules
and object selector of the chart's (charts/dscache/templates/webhook.yaml) and, when the operator
watches given namespaces, a namespace selector for them. The DatasetCache webhook is not called for
updates that keep the spec (a match condition): the webhook passes those anyway, and kopf's own
metadata patches were half its calls when 500 DatasetCaches were created (bench/bench_load.py).
"""

from __future__ import annotations

import base64
from typing import Any

from dscache.api.resource import API_GROUP, API_VERSION, PLURAL
from dscache_operator import names

ADMISSION_API = "admissionregistration.k8s.io/v1"
TIMEOUT_SECONDS = 10  # the API server's default, and the chart's
REINVOCATION = "Never"  # the chart's default (values.yaml `webhook.reinvocationPolicy` says why)
SPEC_CHANGED = "request.operation != 'UPDATE' || object.spec != oldObject.spec"


def configuration_name(peering: str) -> str:
    return f"{peering}.{names.PREFIX}"


def _common(base_url: str, ca_pem: bytes, hook: str, namespaces: tuple[str, ...]) -> dict[str, Any]:
    common: dict[str, Any] = {
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "timeoutSeconds": TIMEOUT_SECONDS,
        "clientConfig": {
            "url": f"{base_url.rstrip('/')}/{hook}",
            "caBundle": base64.b64encode(ca_pem).decode("ascii"),
        },
    }
    if namespaces:
        common["namespaceSelector"] = {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(namespaces)}
            ]
        }
    return common


def build_configurations(
    peering: str, base_url: str, ca_pem: bytes, namespaces: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(MutatingWebhookConfiguration, ValidatingWebhookConfiguration) pointing at `base_url`."""
    name = configuration_name(peering)
    mutating = {
        "apiVersion": ADMISSION_API,
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                **_common(base_url, ca_pem, names.WEBHOOK_MUTATE_PODS, namespaces),
                "name": f"{names.WEBHOOK_MUTATE_PODS}.{name}",
                "reinvocationPolicy": REINVOCATION,
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
                "objectSelector": {
                    "matchExpressions": [
                        {"key": names.LABEL_CACHE, "operator": "Exists"},
                        {"key": names.LABEL_COMPONENT, "operator": "DoesNotExist"},
                    ]
                },
            }
        ],
    }
    validating = {
        "apiVersion": ADMISSION_API,
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                **_common(base_url, ca_pem, names.WEBHOOK_VALIDATE_CACHES, namespaces),
                "name": f"{names.WEBHOOK_VALIDATE_CACHES}.{name}",
                # kopf's own metadata patches (finalizer, annotations) need no call (Kubernetes 1.28+)
                "matchConditions": [{"name": "spec-changed", "expression": SPEC_CHANGED}],
                "rules": [
                    {
                        "apiGroups": [API_GROUP],
                        "apiVersions": [API_VERSION],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [PLURAL],
                        "scope": "Namespaced",
                    }
                ],
            }
        ],
    }
    return mutating, validating


def collection_of(config: dict[str, Any]) -> str:
    """The REST path of a webhook configuration's kind (cluster-scoped)."""
    return f"/apis/{ADMISSION_API}/{config['kind'].lower()}s"


def configuration_path(config: dict[str, Any]) -> str:
    """The REST path of a webhook configuration."""
    return f"{collection_of(config)}/{config['metadata']['name']}"
