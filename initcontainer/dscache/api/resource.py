"""The DatasetCache resource's identity: API group, version, kind, plural and short names, and where
the installer finds its credentials to report the resource's status.

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
# Where the installer Job's install container finds its API credentials: a short-lived projected
# service-account token (`token`) and the cluster's CA (`ca.crt`). The operator mounts them there and
# nowhere else; the installer's status reporter reads them from there.
INSTALLER_TOKEN_DIR = "/var/run/secrets/dscache.io/serviceaccount"


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
