"""Pure builders of the installer: its manifest ConfigMap, its Job, and its narrow RBAC.

Only the install container holds an API credential, for its status reports: a token of the Job's own
ServiceAccount (allowed to patch this one resource's status), projected at `INSTALLER_TOKEN_DIR` with
the cluster CA, valid for `TOKEN_SECONDS` (the shortest the API allows; the kubelet renews it at 80% of
that) and bound to the pod, so it dies with it. The pod sets `automountServiceAccountToken: false`:
neither the gc container nor anything the installer runs gets the default, year-long token.

The token is for the API server's own audience (the projected source names none): its one consumer
is the API server, which accepts only audiences given by `--api-audiences` (by default the issuer).
A dscache audience would need every cluster's admin to add it there, which managed control planes
(EKS, GKE, AKS) do not allow, and it would narrow nothing: any service that accepts tokens for the
API server's audience would accept that one too, once added. What keeps the token small is the rest:
one container, ten minutes, bound to the pod, RBAC for one status subresource.

A cache may run its installer under a ServiceAccount of its own (`spec.install.serviceAccountName`,
or the operator's default), e.g. one a cloud's workload identity trusts; the projected token is then
that account's, and the RoleBinding names it beside the operator-made account (`build_installer_rbac`).
Placement, pull secrets, env, labels and resources come from `dscache_operator.podsettings`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from dscache.api.podsettings import PodSettings
from dscache.api.resource import API_GROUP, GROUP_VERSION, INSTALLER_TOKEN_DIR, KIND, PLURAL
from dscache.api.spec import DatasetCacheSpec
from dscache_operator import names
from dscache_operator.objects import container, job_volumes, object_meta, pod_security, protect_args
from dscache_operator.podsettings import POD_FIELDS, apply_to_pod, combine
from dscache_operator.settings import Settings

# Secret keys each source kind reads; every one optional so a Secret may hold a subset.
SECRET_KEYS = {
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
    "gcs": ("GOOGLE_APPLICATION_CREDENTIALS",),  # the JSON key document itself
    "azure": ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"),
    "huggingFace": ("HF_TOKEN",),
    # A kubernetes.io/basic-auth Secret's keys, or a bearer token's (dscache.remotes.http reads them).
    "http": ("username", "password", "token"),
}
_SOURCE_FIELDS = {"s3": "s3", "gcs": "gcs", "azure": "azure", "huggingFace": "hugging_face", "http": "http"}
# Variables of the http keys (a Secret key such as `username` is no variable name of its own).
HTTP_ENV = {
    "username": "DSCACHE_HTTP_USERNAME",
    "password": "DSCACHE_HTTP_PASSWORD",
    "token": "DSCACHE_HTTP_TOKEN",
}

AZURE_WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
"""The pod label the Azure Workload Identity webhook keys on to project a federated token and the
AZURE_CLIENT_ID / AZURE_TENANT_ID / AZURE_FEDERATED_TOKEN_FILE env (from the ServiceAccount's
`azure.workload.identity/client-id` annotation, which the cluster admin sets)."""

TOKEN_VOLUME = "api-token"
TOKEN_SECONDS = 600


def token_volume() -> dict[str, Any]:
    """The install container's credentials: a short-lived token and the cluster CA (kube-root-ca.crt)."""
    return {
        "name": TOKEN_VOLUME,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_SECONDS}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            ]
        },
    }


def spec_hash(spec: DatasetCacheSpec) -> str:
    """Hash of the resolved spec (defaults applied), so equal specs name the same Job. `prepare` (the
    injected init container's env and resources) is not the installer's: changing it starts no Job."""
    resolved = spec.model_dump(mode="json", by_alias=True, exclude={"prepare"})
    canonical = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
    return names.short_hash(canonical, 16)


def build_configmap(
    body: dict[str, Any], spec: DatasetCacheSpec, job_name: str, claim: str
) -> dict[str, Any]:
    """The manifest `dscache install -f` reads: the resolved spec, named after its Job (immutable)."""
    manifest = {
        "apiVersion": GROUP_VERSION,
        "kind": KIND,
        "metadata": {"name": body["metadata"]["name"], "namespace": body["metadata"]["namespace"]},
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(body, job_name, names.COMPONENT_INSTALLER, claim),
        "data": {names.MANIFEST_KEY: yaml.safe_dump(manifest, sort_keys=False)},
    }


def secret_env(spec: DatasetCacheSpec) -> list[dict[str, Any]]:
    """Credentials from the referenced Secret, as env of the install container only."""
    ref = spec.source.secret_ref
    if ref is None:
        return []
    kind = next(kind for kind, field in _SOURCE_FIELDS.items() if getattr(spec.source, field) is not None)
    return [
        {
            "name": HTTP_ENV.get(key, key),
            "valueFrom": {"secretKeyRef": {"name": ref.name, "key": key, "optional": True}},
        }
        for key in SECRET_KEYS[kind]
    ]


def identity_labels(spec: DatasetCacheSpec) -> dict[str, str]:
    """Pure: pod labels that ask a cluster's workload identity webhook for credentials: Azure
    Workload Identity for an Azure source without a Secret (and not anonymous)."""
    azure = spec.source.azure
    if azure is not None and azure.secret_ref is None and not azure.anonymous:
        return {AZURE_WORKLOAD_IDENTITY_LABEL: "true"}
    return {}


def build_installer_job(
    body: dict[str, Any],
    spec: DatasetCacheSpec,
    settings: Settings,
    *,
    job_name: str,
    claim: str,
    digest: str,
    in_use: list[str],
) -> dict[str, Any]:
    """The single writer: `dscache install` (init container), then `dscache gc` of unused versions.

    `in_use` are versions pods still link (their resolved-versions annotations); gc keeps them.
    """
    meta = body["metadata"]
    install_args = [
        "install",
        "-f",
        f"{names.MANIFEST_DIR}/{names.MANIFEST_KEY}",
        "--cache",
        names.CACHE_MOUNT,
        "--ref",
        names.ref_name(meta["namespace"], meta["name"]),
        "--json",
        "--report-status",
    ]
    api_env = (
        [{"name": "DSCACHE_KUBE_API_URL", "value": settings.installer_api_url}]
        if settings.installer_api_url
        else []
    )
    if settings.status_interval is not None:
        api_env.append({"name": "DSCACHE_STATUS_INTERVAL", "value": f"{settings.status_interval:g}"})
    install = container(
        settings,
        "install",
        install_args,
        env=[*api_env, *secret_env(spec)],
        mounts=[
            {"name": "manifest", "mountPath": names.MANIFEST_DIR, "readOnly": True},
            {"name": TOKEN_VOLUME, "mountPath": INSTALLER_TOKEN_DIR, "readOnly": True},
        ],
    )
    gc_args = ["gc", "--cache", names.CACHE_MOUNT, "--keep", str(spec.retention.keep), "--json"]
    gc = container(settings, "gc", gc_args + protect_args(in_use))
    job_meta = object_meta(body, job_name, names.COMPONENT_INSTALLER, claim)
    job_meta["annotations"].update(
        {names.ANNOTATION_SPEC_HASH: digest, names.ANNOTATION_GENERATION: str(meta.get("generation", 0))}
    )
    pod_labels = {**job_meta["labels"], **identity_labels(spec)}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_meta,
        "spec": {
            "backoffLimit": spec.install.backoff_limit,
            "activeDeadlineSeconds": spec.install.active_deadline_seconds,
            "template": apply_to_pod(
                {
                    "metadata": {"labels": pod_labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "restartPolicy": "Never",
                        "securityContext": pod_security(settings),
                        "volumes": [*job_volumes(claim, job_name), token_volume()],
                        "initContainers": [install],
                        "containers": [gc],
                    },
                },
                pod_settings(spec.install, settings),
                names.installer_account_name(meta["name"]),
            ),
        },
    }
    return spread_over_nodes(job, spec.install.workers)


def pod_settings(own: PodSettings, settings: Settings) -> dict[str, Any]:
    """The effective settings of a cache's installer, gc and cleanup pods (`own`: its spec.install)
    over the operator's defaults (podsettings.combine)."""
    return combine(settings.installer, own, POD_FIELDS)


def installer_account(spec: DatasetCacheSpec, settings: Settings) -> str | None:
    """The ServiceAccount named for installer pods (by the cache or the operator), if any."""
    account = pod_settings(spec.install, settings).get("serviceAccountName")
    return str(account) if account else None


def build_installer_rbac(
    body: dict[str, Any], claim: str, account: str | None = None
) -> list[dict[str, Any]]:
    """ServiceAccount (no automounted token), Role and RoleBinding: patch the status of this one
    DatasetCache, nothing else.

    With `account` (a ServiceAccount of the user's, e.g. for cloud identity) the installer runs under
    it: the RoleBinding binds the Role to that account too, so its projected token reports status; the
    operator's own account stays a subject (and exists) so an installer already running keeps working.
    """
    name = names.installer_account_name(body["metadata"]["name"])
    namespace = body["metadata"]["namespace"]
    subjects = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    if account and account != name:
        subjects.append({"kind": "ServiceAccount", "name": account, "namespace": namespace})
    meta = object_meta(body, name, names.COMPONENT_INSTALLER, claim)
    rule = {
        "apiGroups": [API_GROUP],
        "resources": [f"{PLURAL}/status"],
        "resourceNames": [body["metadata"]["name"]],
        "verbs": ["get", "patch"],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta,
            "automountServiceAccountToken": False,
        },
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": [rule]},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": subjects,
        },
    ]


JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
"""Set by the Job controller on every pod of a Job (Kubernetes 1.27+)."""


def spread_over_nodes(job: dict[str, Any], workers: int) -> dict[str, Any]:
    """Pure: the installer Job as `workers` cooperating pods when `workers` > 1 (unchanged at 1).

    An Indexed Job (completions = parallelism = `workers`; `dscache install --workers K` reads its
    index from `JOB_COMPLETION_INDEX`), each index retried on its own up to the Job's `backoffLimit`
    (`backoffLimitPerIndex`, the overall limit scaled by K). Its pods prefer distinct nodes: a
    preferred pod anti-affinity by hostname on the Job's own pods, merged into whatever affinity the
    pod template already has. The gc container waits without limit for the install to be published
    (a worker that finishes its share early waits there; the writer lock admits it once the team is
    done or has been gone for a lease).
    """
    if workers == 1:
        return job
    job = copy.deepcopy(job)
    spec = job["spec"]
    per_index = spec["backoffLimit"]
    spec.update(
        {
            "completionMode": "Indexed",
            "completions": workers,
            "parallelism": workers,
            "backoffLimitPerIndex": per_index,
            "backoffLimit": per_index * workers,
        }
    )
    pod = spec["template"]["spec"]
    for init in pod["initContainers"]:
        if init["name"] == "install":
            init["args"] = [*init["args"], "--workers", str(workers)]
    for main in pod["containers"]:
        if main["name"] == "gc":
            main["args"] = [*main["args"], "--lock-timeout", "inf"]
    term = {
        "weight": 100,
        "podAffinityTerm": {
            "topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": {JOB_NAME_LABEL: job["metadata"]["name"]}},
        },
    }
    anti = pod.setdefault("affinity", {}).setdefault("podAntiAffinity", {})
    anti.setdefault("preferredDuringSchedulingIgnoredDuringExecution", []).append(term)
    return job
