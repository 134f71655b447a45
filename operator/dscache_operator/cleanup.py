"""Pure builder of the cleanup Job (`retention.onDelete: Delete`)."""

from __future__ import annotations

from typing import Any

from dscache.api.podsettings import PodSettings
from dscache.api.spec import DatasetCacheSpec
from dscache_operator import names
from dscache_operator.installer import pod_settings
from dscache_operator.objects import container, job_volumes, object_meta, pod_security, protect_args
from dscache_operator.podsettings import apply_to_pod
from dscache_operator.settings import Settings


def build_cleanup_job(
    body: dict[str, Any],
    settings: Settings,
    *,
    claim: str,
    in_use: list[str],
    spec: DatasetCacheSpec | None = None,
) -> dict[str, Any]:
    """`dscache release`: drop this resource's ref and remove the versions no other ref or pod uses.

    Its pod takes the pod settings of `spec` (placement, pull secrets, env, labels) as the installer's
    (none given: the operator's defaults).
    """
    meta = body["metadata"]
    name = names.cleanup_job_name(meta["name"], meta["uid"])
    args = ["release", "--cache", names.CACHE_MOUNT, "--ref", names.ref_name(meta["namespace"], meta["name"])]
    release = container(settings, "release", [*args, "--json", *protect_args(in_use)])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": object_meta(body, name, names.COMPONENT_CLEANUP, claim),
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": 3600,
            "template": apply_to_pod(
                {
                    "metadata": {"labels": object_meta(body, name, names.COMPONENT_CLEANUP, claim)["labels"]},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "restartPolicy": "Never",
                        "securityContext": pod_security(settings),
                        "volumes": job_volumes(claim, None),
                        "containers": [release],
                    },
                },
                pod_settings(spec.install if spec else PodSettings(), settings),
                None,
            ),
        },
    }
