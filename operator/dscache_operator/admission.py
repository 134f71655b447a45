"""Admission decisions from the in-memory index (`cacheindex`): the pod patch, the spec validation.

The normal case makes no API request (issue 17). Two exceptions, one request each, counted by
`dscache_admission_api_reads_total`:
- a pod names a DatasetCache the index does not hold: one GET. The watch event of a DatasetCache
  created a moment before the pod may not have arrived yet; refusing that pod would be wrong, and its
  patch needs the spec, so admitting it blind is not possible. A name that does not exist is refused
  after the GET, as before.
- conflict validation before the index has listed its namespaces (start-up): one list, as before.
"""

from __future__ import annotations

from typing import Any

from dscache.api.spec import SpecError, parse_spec
from dscache_operator import metrics, names
from dscache_operator.cacheindex import CacheIndex, Entry, make_entry
from dscache_operator.kubeapi import KubeApi, dsc_path
from dscache_operator.podpatch import Denied, JsonPatch, build_patch
from dscache_operator.settings import Settings
from dscache_operator.validation import claim_use, cluster_refusal, find_claim_conflict, first_conflict


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
    """Decisions of both webhooks; `kube` is read only on an index miss (see the module docstring)."""

    def __init__(self, index: CacheIndex, kube: KubeApi, settings: Settings) -> None:
        self.index, self.kube, self.settings = index, kube, settings

    async def _cache(self, namespace: str, name: str) -> Entry | None:
        entry = self.index.get(namespace, name)
        if entry is not None:
            return entry
        metrics.ADMISSION_API_READS.inc()
        found = await self.kube.get(dsc_path(namespace, name))
        return make_entry(found) if found is not None else None

    async def mutate_pod(self, pod: dict[str, Any], namespace: str) -> tuple[JsonPatch, list[str]]:
        """The patch and warnings for a labelled pod; raises Denied with what to fix."""
        if self.settings.namespaces and namespace not in self.settings.namespaces:
            return [], []  # another operator's namespace (dev mode registers no namespace selector)
        name = pod["metadata"]["labels"][names.LABEL_CACHE]
        entry = await self._cache(namespace, name)
        if entry is None or entry.deleting:
            state = "is being deleted" if entry else "does not exist"
            raise Denied(
                f"pod label {names.LABEL_CACHE}={name}: DatasetCache {name} {state} in namespace "
                f"{namespace}; create it first, or label the pod with an existing DatasetCache "
                f"(kubectl get datasetcaches -n {namespace})"
            )
        if entry.spec is None:
            raise Denied(f"DatasetCache {name} is invalid: {entry.error}")
        if entry.spec.volume is None:
            raise Denied(f"DatasetCache {name} has no spec.volume")
        warning = readiness_warning(entry.body, self.settings)
        return build_patch(pod, entry.body, entry.spec, self.settings), [warning] if warning else []

    async def validate_cache(
        self, cache: dict[str, Any], old: dict[str, Any] | None, *, dry_run: bool = False
    ) -> None:
        """Raise Denied when a new spec is invalid or clashes with another DatasetCache on its claim.

        Updates that keep the spec (finalizers, annotations, deletion) always pass: a resource
        admitted before must stay deletable. What passes (but a dry run) is recorded in the index,
        so the next resource of a bulk apply is checked against it before its watch event arrives.
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
        use = claim_use(meta["name"], spec)
        if use is not None:
            if self.index.synced:
                conflict = first_conflict(meta["name"], use, self.index.sharing(meta["namespace"], use))
            else:
                metrics.ADMISSION_API_READS.inc()
                others = await self.kube.list(dsc_path(meta["namespace"]))
                conflict = find_claim_conflict(meta["name"], spec, others)
            if conflict:
                raise Denied(conflict)
        if not dry_run:
            self.index.admitted(cache)
