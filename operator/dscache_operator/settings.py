"""Operator settings: what the deployment decides, not the DatasetCache (image, API URL for Jobs...)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dscache import __version__

DEFAULT_IMAGE = f"ghcr.io/dscache/dscache:{__version__}"
# prepare links and, with scratch, copies files: little CPU or memory, but copies fill the page cache.
DEFAULT_PREPARE_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "1Gi"},
}
DEFAULT_PREPARE_WAIT = 3600.0
WEBHOOK_PORT = 9443


@dataclass(frozen=True)
class WebhookSettings:
    """The admission webhook server: off, serving a mounted certificate, or dev mode.

    Dev mode generates a CA and registers URL webhook configurations pointing at `host:port` itself
    (named after the peering); otherwise the configurations are someone else's (the Helm chart's).
    """

    cert: str | None = None
    key: str | None = None
    dev: bool = False
    port: int = WEBHOOK_PORT
    addr: str = "0.0.0.0"
    host: str = "127.0.0.1"

    @property
    def enabled(self) -> bool:
        return self.dev or self.cert is not None


@dataclass(frozen=True)
class Settings:
    """Fixed for the life of the process; built from flags and DSCACHE_OPERATOR_* variables."""

    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    # Passed to installer Jobs as DSCACHE_KUBE_API_URL when set; else they use the in-cluster service env.
    installer_api_url: str | None = None
    namespaces: tuple[str, ...] = ()
    peering_name: str = "dscache"
    standalone: bool = False
    liveness_url: str | None = "http://0.0.0.0:8080/healthz"
    metrics_port: int | None = 9090
    run_as_user: int = 65532
    # The injected init container: how long it waits for the versions, and its resources.
    prepare_wait: float = DEFAULT_PREPARE_WAIT
    prepare_resources: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PREPARE_RESOURCES))
    webhook: WebhookSettings = WebhookSettings()


def from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The DSCACHE_OPERATOR_* variables, lower-cased without the prefix (defaults for the flags)."""
    env = os.environ if env is None else env
    prefix = "DSCACHE_OPERATOR_"
    return {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
