"""Pure pieces shared by the builders: metadata with owner and labels, hardened containers, volumes."""

from __future__ import annotations

from typing import Any

from dscache_operator import names
from dscache_operator.settings import Settings


def object_meta(body: dict[str, Any], name: str, component: str, claim: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": body["metadata"]["namespace"],
        "labels": {
            names.LABEL_CACHE: body["metadata"]["name"],
            names.LABEL_COMPONENT: component,
            names.LABEL_CLAIM: names.claim_label(claim),
            "app.kubernetes.io/name": "dscache",
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": "dscache-operator",
        },
        "annotations": {names.ANNOTATION_CLAIM: claim},
        "ownerReferences": [names.owner_reference(body)],
    }


def pod_security(settings: Settings) -> dict[str, Any]:
    uid = settings.run_as_user
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


# Writable scratch under a read-only root filesystem (not /tmp: the test bed keeps pod files there).
TMP = "/var/tmp"
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def job_volumes(claim: str, configmap: str | None) -> list[dict[str, Any]]:
    vols: list[dict[str, Any]] = [
        {"name": "cache", "persistentVolumeClaim": {"claimName": claim}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if configmap:
        vols.append({"name": "manifest", "configMap": {"name": configmap}})
    return vols


def container(settings: Settings, name: str, args: list[str], **extra: Any) -> dict[str, Any]:
    mounts = [{"name": "cache", "mountPath": names.CACHE_MOUNT}, {"name": "tmp", "mountPath": TMP}]
    return {
        "name": name,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": args,
        "env": [{"name": "HOME", "value": TMP}, {"name": "TMPDIR", "value": TMP}, *extra.pop("env", [])],
        "volumeMounts": mounts + extra.pop("mounts", []),
        "securityContext": CONTAINER_SECURITY,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        **extra,
    }


def protect_args(versions: list[str]) -> list[str]:
    return [arg for v in sorted(set(versions)) for arg in ("--in-use", v)]
