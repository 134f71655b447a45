"""Admission decisions with their API reads: the pure builders get the DatasetCaches they need here."""

from __future__ import annotations

from typing import Any

from dscache.api.spec import SpecError, parse_spec
from dscache_operator import names
from dscache_operator.kubeapi import KubeApi, dsc_path
from dscache_operator.podpatch import Denied, JsonPatch, build_patch
from dscache_operator.settings import Settings
from dscache_operator.validation import cluster_refusal, find_claim_conflict


def readiness_warning(cache: dict[str, Any], settings: Settings) -> str | None:
    """Shown by kubectl when a pod is admitted before its cache is Ready: it will wait, not fail."""
    status = cache.get("status") or {}
    generation = cache["metadata"].get("generation")
    if status.get("phase") == "Ready" and status.get("observedGeneration") == generation:
        return None
    phase = status.get("phase") or "not Ready yet"
    return (
        f"DatasetCache {cache['metadata']['name']} is {phase}: the pod's init container waits up to "
        f"{settings.prepare_wait:g}s for its versions"
    )


class Admission:
    def __init__(self, kube: KubeApi, settings: Settings) -> None:
        self.kube, self.settings = kube, settings

    async def mutate_pod(self, pod: dict[str, Any], namespace: str) -> tuple[JsonPatch, list[str]]:
        """The patch and warnings for a labelled pod; raises Denied with what to fix."""
        if self.settings.namespaces and namespace not in self.settings.namespaces:
            return [], []  # another operator's namespace (dev mode registers no namespace selector)
        name = pod["metadata"]["labels"][names.LABEL_CACHE]
        cache = await self.kube.get(dsc_path(namespace, name))
        if cache is None or cache["metadata"].get("deletionTimestamp"):
            state = "is being deleted" if cache else "does not exist"
            raise Denied(
                f"pod label {names.LABEL_CACHE}={name}: DatasetCache {name} {state} in namespace "
                f"{namespace}; create it first, or label the pod with an existing DatasetCache "
                f"(kubectl get datasetcaches -n {namespace})"
            )
        try:
            spec = parse_spec(cache.get("spec"))
        except SpecError as err:
            raise Denied(f"DatasetCache {name} is invalid: {err}") from None
        if spec.volume is None:
            raise Denied(f"DatasetCache {name} has no spec.volume")
        warning = readiness_warning(cache, self.settings)
        return build_patch(pod, cache, spec, self.settings), [warning] if warning else []

    async def validate_cache(self, cache: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Raise Denied when a new spec is invalid or clashes with another DatasetCache on its claim.

        Updates that keep the spec (finalizers, annotations, deletion) always pass: a resource
        admitted before must stay deletable.
        """
        meta = cache["metadata"]
        if old is not None and old.get("spec") == cache.get("spec"):
            return
        try:
            spec = parse_spec(cache.get("spec"))
        except SpecError as err:
            raise Denied(str(err)) from None
        refused = cluster_refusal(spec, self.settings)
        if refused is not None:
            raise Denied(refused)
        others = await self.kube.list(dsc_path(meta["namespace"]))
        conflict = find_claim_conflict(meta["name"], spec, others)
        if conflict:
            raise Denied(conflict)
