"""Helpers for the chart tests: the pinned helm binary (built by hack/testbed), render, parse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "dscache"
HACK = ROOT / "hack"
if str(HACK) not in sys.path:
    sys.path.insert(0, str(HACK))

from dscache_testbed import build  # noqa: E402

KUBE_VERSION = "1.36.3"  # what the test bed runs


def helm_bin() -> Path:
    path: Path = build.binary("helm")
    if not path.exists():
        raise AssertionError(f"helm not built ({path}): run `hack/testbed build` or .ci/testbed.sh first")
    return path


def helm(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the pinned helm; raise with its stderr on failure when `check`."""
    proc = subprocess.run(
        [str(helm_bin()), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def set_args(values: dict[str, str]) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def render_text(
    values: dict[str, str] | None = None,
    namespace: str = "dscache-system",
    release: str = "dscache",
    files: tuple[Path, ...] = (),
) -> str:
    """`helm template` with `--set` values and values files (`-f`, as users write them: YAML numbers)."""
    return helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        "--include-crds",
        *[arg for path in files for arg in ("-f", str(path))],
        *set_args(values or {}),
    ).stdout


def render(
    values: dict[str, str] | None = None,
    namespace: str = "dscache-system",
    release: str = "dscache",
    files: tuple[Path, ...] = (),
) -> list[dict[str, Any]]:
    """Every object `helm template` renders (CRDs and the test hook included)."""
    return [doc for doc in yaml.safe_load_all(render_text(values, namespace, release, files)) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


# Variants the tests render and validate (name -> --set values); each must stay valid for the API server.
VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "cert-manager": {"webhook.certManager.enabled": "true"},
    "cert-manager-issuer": {
        "webhook.certManager.enabled": "true",
        "webhook.certManager.issuerRef.name": "corp-ca",
        "webhook.certManager.issuerRef.kind": "ClusterIssuer",
    },
    "service-monitor": {
        "metrics.serviceMonitor.enabled": "true",
        "metrics.serviceMonitor.labels.release": "kps",
        "metrics.prometheusRule.enabled": "true",
    },
    "failure-ignore": {"webhook.failurePolicy": "Ignore", "webhook.namespaceSelector.matchLabels.team": "ml"},
    "namespaced": {"operator.watchNamespaces[0]": "{ns}"},
    "resources": {
        "operator.resources.requests.cpu": "200m",
        "operator.resources.requests.memory": "256Mi",
        "operator.resources.limits.cpu": "1",
        "operator.resources.limits.memory": "1Gi",
    },
    "no-webhook-no-metrics": {"webhook.enabled": "false", "metrics.enabled": "false"},
    "pull-always-other-user": {
        "image.pullPolicy": "Always",
        "podSecurityContext.runAsUser": "1000680000",
        "podSecurityContext.runAsGroup": "1000680000",
        "podSecurityContext.fsGroup": "1000680000",
    },
    "digest-and-existing-sa": {
        "image.digest": "sha256:" + "ab" * 32,
        "serviceAccount.create": "false",
        "serviceAccount.name": "platform-operator",
    },
}


def variant(name: str, namespace: str) -> dict[str, str]:
    return {k: v.replace("{ns}", namespace) for k, v in VARIANTS[name].items()}
