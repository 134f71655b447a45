"""The DatasetCache resource's identity: API group, version, kind, plural and short names.

Standard library only, so the installer's status reporter and the operator's API paths use it without
loading the models (`dscache.api.spec`, `dscache.api.status`).
"""

from __future__ import annotations

API_GROUP = "dscache.io"
API_VERSION = "v1alpha1"
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"
KIND = "DatasetCache"
LIST_KIND = f"{KIND}List"
PLURAL = "datasetcaches"
SINGULAR = "datasetcache"
SHORT_NAMES = ("dsc",)
CATEGORIES = ("dscache",)


def resource_path(namespace: str, name: str = "", subresource: str = "") -> str:
    """The REST path of the collection (no `name`), one resource, or its subresource (e.g. `status`).

    E.g. `/apis/dscache.io/v1alpha1/namespaces/ml/datasetcaches/cache/status`.
    """
    path = f"/apis/{GROUP_VERSION}/namespaces/{namespace}/{PLURAL}"
    if name:
        path = f"{path}/{name}"
        if subresource:
            path = f"{path}/{subresource}"
    return path
