"""The interface of the one API module: what the reconciler and admission may ask of the API server.

`KubeApi` is a Protocol over REST paths and JSON dicts; `kube.Kube` implements it with
kubernetes_asyncio, the tests with an in-memory fake. The paths of the objects the operator touches
are built here, without any client library.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from dscache.api.resource import GROUP_VERSION, PLURAL, resource_path


def dsc_path(namespace: str, name: str = "") -> str:
    """The DatasetCache collection of a namespace, or one DatasetCache in it."""
    return resource_path(namespace, name)


def dsc_collection(namespace: str | None) -> str:
    """The DatasetCaches of a namespace, or of every namespace (None)."""
    return dsc_path(namespace) if namespace is not None else f"/apis/{GROUP_VERSION}/{PLURAL}"


def collection_path(manifest: dict[str, Any]) -> str:
    """The collection URL of a namespaced object's kind (the kinds the operator creates)."""
    api, kind, ns = manifest["apiVersion"], manifest["kind"], manifest["metadata"]["namespace"]
    plural = {
        "Job": "jobs",
        "ConfigMap": "configmaps",
        "PersistentVolumeClaim": "persistentvolumeclaims",
        "ServiceAccount": "serviceaccounts",
        "Role": "roles",
        "RoleBinding": "rolebindings",
    }[kind]
    prefix = "/api/v1" if api == "v1" else f"/apis/{api}"
    return f"{prefix}/namespaces/{ns}/{plural}"


class KubeApi(Protocol):
    """JSON over the API server. Paths are URL paths (`/apis/batch/v1/namespaces/ml/jobs/x`).

    Errors other than those documented per method (network, 403, 5xx) propagate as the client's
    exceptions; kopf retries the handler that met them.
    """

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist (404)."""
        ...

    async def list(self, path: str, label_selector: str = "") -> list[dict[str, Any]]:
        """The items of a collection, optionally filtered by a label selector (`a=b,c,!d`)."""
        ...

    async def create(self, manifest: dict[str, Any]) -> bool:
        """Create the object; False when it already exists (creation is idempotent by name)."""
        ...

    async def patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        """JSON merge patch (RFC 7386); the patched object, or None when it is gone."""
        ...

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge-patch the status subresource of a DatasetCache (nothing when it is gone)."""
        ...

    async def delete(self, path: str) -> None:
        """Delete with background propagation; nothing when it is already gone."""
        ...


class WatchApi(Protocol):
    """What an informer asks of the API server: a listing, then the changes after it."""

    async def list_versioned(self, path: str) -> tuple[list[dict[str, Any]], str]:
        """The items of a collection and the list's resourceVersion (where a watch may start)."""
        ...

    def watch(self, path: str, resource_version: str, timeout: int) -> AsyncIterator[dict[str, Any]]:
        """Watch events (`{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": {...}}`) after
        `resource_version`, bookmarks included, until the server ends the watch (after about `timeout`
        seconds). An expired version arrives as an ERROR event with `object.code` 410."""
        ...
