"""The one module that talks to the Kubernetes API (besides kopf's own watching and events).

A thin async REST layer over kubernetes_asyncio: paths in, JSON dicts out, so handlers and builders
deal in plain manifests. `Kube` implements `kubeapi.KubeApi`, the interface the reconciler and
admission depend on. Credentials: in-cluster ServiceAccount, else the kubeconfig (KUBECONFIG).
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from kubernetes_asyncio import config
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException

from dscache_operator.kubeapi import collection_path, dsc_path
from dscache_operator.webhookconfig import collection_of, configuration_path

MERGE_PATCH = "application/merge-patch+json"
TIMEOUT = 30


class Kube:
    """`KubeApi` over the API server with the operator's credentials (plus start-up and shutdown)."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    @classmethod
    async def connect(cls) -> Kube:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(
            "/var/run/secrets/kubernetes.io/serviceaccount/token"
        ):
            cfg = Configuration()
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            return cls(ApiClient(cfg))
        return cls(await config.new_client_from_config())

    async def close(self) -> None:
        await self.client.close()

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        result = await self.client.call_api(
            path,
            method,
            query_params=list((query or {}).items()),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            response_types_map={200: "object", 201: "object", 202: "object"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _request_timeout=TIMEOUT,
        )
        return dict(result or {})

    async def get(self, path: str) -> dict[str, Any] | None:
        try:
            return await self._call("GET", path)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    async def list(self, path: str, label_selector: str = "") -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        return list((await self._call("GET", path, query=query)).get("items", []))

    async def list_versioned(self, path: str) -> tuple[builtins.list[dict[str, Any]], str]:
        found = await self._call("GET", path)
        return list(found.get("items", [])), str(found["metadata"]["resourceVersion"])

    async def watch(self, path: str, resource_version: str, timeout: int) -> AsyncIterator[dict[str, Any]]:
        """`kubeapi.WatchApi.watch`, one JSON line per event.

        Not kubernetes_asyncio's `watch.Watch`: it decodes, re-encodes and decodes every object again,
        builds an ApiClient of the default configuration, and reads lines with aiohttp's `readline`,
        which fails on a line over 128 KiB (an object with a long status).
        """
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout),
        }
        resp = await self.client.call_api(
            path,
            "GET",
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=aiohttp.ClientTimeout(sock_connect=TIMEOUT, sock_read=timeout + TIMEOUT),
        )
        try:
            if not 200 <= resp.status < 300:
                raise ApiException(status=resp.status, reason=(await resp.text())[:500])
            pending = b""
            async for chunk in resp.content.iter_any():
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.release()

    async def create(self, manifest: dict[str, Any]) -> bool:
        """Create the object; False when it already exists (creation is idempotent by name)."""
        return await self._create_at(collection_path(manifest), manifest)

    async def ensure_peering(self, name: str, namespaces: tuple[str, ...]) -> None:
        """kopf's peering object must exist before instances can see each other."""
        if not namespaces:
            body = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}}
            await self._create_at("/apis/kopf.dev/v1/clusterkopfpeerings", body)
        for ns in namespaces:
            body = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": name}}
            await self._create_at(f"/apis/kopf.dev/v1/namespaces/{ns}/kopfpeerings", body)

    async def ensure_webhook_configuration(self, config: dict[str, Any]) -> None:
        """Dev mode: create a webhook configuration, or point an existing one's webhooks at us."""
        if not await self._create_at(collection_of(config), config):
            await self.patch(configuration_path(config), {"webhooks": config["webhooks"]})

    async def _create_at(self, path: str, body: dict[str, Any]) -> bool:
        try:
            await self._call("POST", path, body)
        except ApiException as err:
            if err.status == 409:
                return False
            raise
        return True

    async def patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        """Merge-patch; None when the object is gone."""
        try:
            return await self._call("PATCH", path, patch, content_type=MERGE_PATCH)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self.patch(f"{dsc_path(namespace, name)}/status", {"status": status})

    async def delete(self, path: str) -> None:
        try:
            await self._call("DELETE", path, {"propagationPolicy": "Background"})
        except ApiException as err:
            if err.status != 404:
                raise
