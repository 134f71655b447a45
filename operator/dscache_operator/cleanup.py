"""Pure builder of the cleanup Job (`retention.onDelete: Delete`)."""

from __future__ import annotations

from typing import Any

from dscache_operator import names
from dscache_operator.objects import container, job_volumes, object_meta, pod_security, protect_args
from dscache_operator.settings import Settings


def build_cleanup_job(
    body: dict[str, Any], settings: Settings, *, claim: str, in_use: list[str]
) -> dict[str, Any]:
    """`dscache release`: drop this resource's ref and remove the versions no other ref or pod uses."""
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
            "template": {
                "metadata": {"labels": object_meta(body, name, names.COMPONENT_CLEANUP, claim)["labels"]},
                "spec": {
                    "automountServiceAccountToken": False,
                    "restartPolicy": "Never",
                    "securityContext": pod_security(settings),
                    "volumes": job_volumes(claim, None),
                    "containers": [release],
                },
            },
        },
    }
