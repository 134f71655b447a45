"""The validating webhook's decision for a DatasetCache: what the CRD's schema and CEL rules cannot see.

CEL checks one object; a clash between two DatasetCaches on one claim needs the others. Two sources
writing the same `<dataType>/<source>/<version>` paths of one volume would mix two datasets (the
installer trusts a published version it finds), so a claim holds each dataType/source from one source.

A cluster also refuses what a laptop allows (`cluster_refusal`): `file` sources, and host scratch
outside the admin's directories, a setting the CRD cannot know. The reconciler asks the same, so a
DatasetCache stored while the webhook was off, or before a chart upgrade (Helm never upgrades a CRD),
gets no installer either (docs/threat-model.md).
"""

from __future__ import annotations

from typing import Any

from dscache.api.spec import FILE_SOURCE_IN_CLUSTER, DatasetCacheSpec, SpecError, parse_spec
from dscache_operator.hostpaths import HostPathError, check_host_path
from dscache_operator.settings import Settings
from dscache_operator.volume import get_claim_name


def cluster_refusal(spec: DatasetCacheSpec, settings: Settings) -> str | None:
    """Why a cluster refuses `spec` (None: it does not), naming the field: a `file` source, or a
    `scratch.hostPath.path` that is not one of the admin's `scratch_host_paths`."""
    if spec.source.file is not None:
        return FILE_SOURCE_IN_CLUSTER
    host = spec.scratch.host_path
    if host is not None:
        try:
            check_host_path(host.path, settings.scratch_host_paths)
        except HostPathError as err:
            return f"spec.scratch.hostPath.path: {err}"
    return None


def _origin(spec: DatasetCacheSpec) -> tuple[str, str]:
    return spec.source.display_url(), spec.layout


def find_claim_conflict(name: str, spec: DatasetCacheSpec, others: list[dict[str, Any]]) -> str | None:
    """Why `spec` may not use its claim (None: it may): another resource fills a slot from elsewhere."""
    if spec.volume is None:
        return None
    claim = get_claim_name(name, spec)
    slots = {f"{dt}/{src}" for dt, by in spec.versions.items() for src in by}
    for other in sorted(others, key=lambda o: str(o["metadata"]["name"])):
        meta = other["metadata"]
        if meta["name"] == name or meta.get("deletionTimestamp"):
            continue
        try:
            theirs = parse_spec(other.get("spec"))
        except SpecError:
            continue
        if theirs.volume is None or get_claim_name(meta["name"], theirs) != claim:
            continue
        if _origin(theirs) == _origin(spec):
            continue
        shared = sorted(slots & {f"{dt}/{src}" for dt, by in theirs.versions.items() for src in by})
        if shared:
            url, layout = _origin(theirs)
            return (
                f"claim {claim} already holds {', '.join(shared)} from {url} (layout {layout}) for "
                f"DatasetCache {meta['name']}; a different source under the same dataType/source would mix "
                "two datasets on one volume: give the source another name in spec.versions, or use "
                "another claim"
            )
    return None
