"""The cache volume: which claim a DatasetCache uses, and the PVC it creates for `volume.create`."""

from __future__ import annotations

from typing import Any

from dscache.api.spec import DatasetCacheSpec
from dscache_operator import names
from dscache_operator.objects import object_meta


def get_claim_name(name: str, spec: DatasetCacheSpec) -> str:
    assert spec.volume is not None
    return spec.volume.claim_name or names.created_claim_name(name)


def build_pvc(body: dict[str, Any], spec: DatasetCacheSpec, claim: str) -> dict[str, Any]:
    """The ReadWriteMany claim for `volume.create`, owned by the resource."""
    assert spec.volume is not None and spec.volume.create is not None
    create = spec.volume.create
    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": create.size}},
    }
    if create.storage_class_name:
        pvc_spec["storageClassName"] = create.storage_class_name
    meta = object_meta(body, claim, "cache", claim)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": pvc_spec}
