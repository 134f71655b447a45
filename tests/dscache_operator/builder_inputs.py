"""Shared inputs of the builder tests: a DatasetCache body, a spec, operator settings."""

from __future__ import annotations

from typing import Any

from dscache_operator.settings import Settings
from tests.factories import version_items

SETTINGS = Settings(
    image="registry.example/dscache:1.2.3",
    image_pull_policy="Always",
    run_as_user=1000680000,
    installer_api_url="https://api.example:6443",
)
# What every pod of an installer or cleanup Job runs as, with SETTINGS.
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 1000680000,
    "runAsGroup": 1000680000,
    "fsGroup": 1000680000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
BODY: dict[str, Any] = {
    "apiVersion": "dscache.io/v1alpha1",
    "kind": "DatasetCache",
    "metadata": {
        "name": "objs",
        "namespace": "ml",
        "uid": "0b5d9c1e-aaaa-bbbb-cccc-000000000001",
        "generation": 3,
    },
}
SPEC: dict[str, Any] = {
    "source": {"s3": {"bucket": "b", "endpoint": "http://minio:9000", "secretRef": {"name": "creds"}}},
    "versions": version_items("objects/thor=v1"),
    "volume": {"create": {"size": "100Gi", "storageClassName": "rwx"}},
    "install": {"resources": {"limits": {"memory": "2Gi"}}, "backoffLimit": 1, "activeDeadlineSeconds": 600},
    "retention": {"keep": 1},
}
