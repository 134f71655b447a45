"""The validating webhook's decision for a DatasetCache: what the CRD's schema and CEL rules cannot see.

CEL checks one object; a clash between two DatasetCaches on one claim needs the others. Two sources
writing the same `<dataType>/<source>/<version>` paths of one volume would mix two datasets (the
installer trusts a published version it finds), so a claim holds each dataType/source from one source.

A cluster also refuses what a laptop allows (`cluster_refusal`): `file` sources, credentials in an
http URL, and host scratch
outside the admin's directories, a setting the CRD cannot know. The reconciler asks the same, so a
DatasetCache stored while the webhook was off, or before a chart upgrade (Helm never upgrades a CRD),
gets no installer either (docs/threat-model.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dscache.api.spec import (
    FILE_SOURCE_IN_CLUSTER,
    HTTP_CREDENTIALS_IN_CLUSTER,
    DatasetCacheSpec,
    SpecError,
    parse_spec,
)
from dscache_operator.hostpaths import HostPathError, check_host_path
from dscache_operator.settings import Settings
from dscache_operator.volume import get_claim_name


def cluster_refusal(spec: DatasetCacheSpec, settings: Settings) -> str | None:
    """Why a cluster refuses `spec` (None: it does not), naming the field: a `file` source, an http
    URL with `user:password@` (stored in the spec and the installer's ConfigMap; a Secret keeps them),
    or a `scratch.hostPath.path` that is not one of the admin's `scratch_host_paths`."""
    if spec.source.file is not None:
        return FILE_SOURCE_IN_CLUSTER
    if spec.source.http is not None and spec.source.http.has_userinfo():
        return HTTP_CREDENTIALS_IN_CLUSTER
    host = spec.scratch.host_path
    if host is not None:
        try:
            check_host_path(host.path, settings.scratch_host_paths)
        except HostPathError as err:
            return f"spec.scratch.hostPath.path: {err}"
    return None


@dataclass(frozen=True)
class ClaimUse:
    """What one DatasetCache puts on its claim: `<dataType>/<source>` slots filled from one origin.

    `origin` is (source URL for display, layout); two resources with the same origin may share slots.
    """

    claim: str
    origin: tuple[str, str]
    slots: frozenset[str]


def claim_use(name: str, spec: DatasetCacheSpec) -> ClaimUse | None:
    """The claim and slots `spec` fills (None: no volume, so no claim to clash on)."""
    if spec.volume is None:
        return None
    slots = frozenset(item.slot for item in spec.versions)
    return ClaimUse(get_claim_name(name, spec), (spec.source.display_url(), spec.layout), slots)


def first_conflict(name: str, use: ClaimUse, others: Iterable[tuple[str, ClaimUse]]) -> str | None:
    """Why `name` may not fill `use` (None: it may), given the other resources' uses of any claims.

    The first clash by name wins: another resource on the same claim holding a slot of `use` from a
    different origin. `others` may hold `name` itself (ignored) and uses of other claims.
    """
    clashes = sorted(
        (other, theirs)
        for other, theirs in others
        if other != name
        and theirs.claim == use.claim
        and theirs.origin != use.origin
        and theirs.slots & use.slots
    )
    if not clashes:
        return None
    other, theirs = clashes[0]
    url, layout = theirs.origin
    return (
        f"claim {use.claim} already holds {', '.join(sorted(theirs.slots & use.slots))} from {url} "
        f"(layout {layout}) for DatasetCache {other}; a different source under the same dataType/source "
        "would mix two datasets on one volume: give the source another name in spec.versions, or use "
        "another claim"
    )


def find_claim_conflict(name: str, spec: DatasetCacheSpec, others: list[dict[str, Any]]) -> str | None:
    """`first_conflict` against listed resources: those being deleted or invalid hold no slot."""
    use = claim_use(name, spec)
    if use is None:
        return None
    uses = []
    for other in others:
        meta = other["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        try:
            theirs = claim_use(meta["name"], parse_spec(other.get("spec")))
        except SpecError:
            continue
        if theirs is not None:
            uses.append((str(meta["name"]), theirs))
    return first_conflict(name, use, uses)
