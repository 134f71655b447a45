"""Operator settings: what the deployment decides, not the DatasetCache (image, API URL for Jobs...)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from dscache import __version__

DEFAULT_IMAGE = f"ghcr.io/dscache/dscache:{__version__}"


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


def from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The DSCACHE_OPERATOR_* variables, lower-cased without the prefix (defaults for the flags)."""
    env = os.environ if env is None else env
    prefix = "DSCACHE_OPERATOR_"
    return {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
