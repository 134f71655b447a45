"""Names, labels and annotations the operator puts on objects: one place, one `dscache.io/` prefix."""

from __future__ import annotations

import hashlib

from dscache.api.resource import API_GROUP, GROUP_VERSION, KIND

PREFIX = API_GROUP
FINALIZER = f"{PREFIX}/finalizer"
LABEL_CACHE = f"{PREFIX}/cache"  # on installer/cleanup Jobs, and on workload pods (issue 6)
LABEL_COMPONENT = f"{PREFIX}/component"
LABEL_CLAIM = f"{PREFIX}/claim"
ANNOTATION_SPEC_HASH = f"{PREFIX}/spec-hash"
ANNOTATION_GENERATION = f"{PREFIX}/generation"
ANNOTATION_CLAIM = f"{PREFIX}/claim"
# On a DatasetCache, set by a user (any new value, by convention a timestamp, as Flux's
# reconcile.fluxcd.io/requestedAt): retry a Failed install at once instead of after the backoff.
ANNOTATION_RECONCILE_REQUESTED = f"{PREFIX}/reconcile-requested-at"
# On workload pods: the versions the pod links, comma-separated `DT/SRC=VER` (the syntax of
# `dscache gc --in-use`). Written by the webhook (issue 6); the gc of installer Jobs protects them.
ANNOTATION_RESOLVED_VERSIONS = f"{PREFIX}/resolved-versions"
# On workload pods, set by their author: the scratch mode and pinned versions (see podpatch.py).
ANNOTATION_SCRATCH = f"{PREFIX}/scratch"
ANNOTATION_VERSIONS = f"{PREFIX}/versions"
# Webhook handler ids, which kopf serves as URL paths (`/<id>`); the chart registers these paths.
WEBHOOK_MUTATE_PODS = "mutate-pods"
WEBHOOK_VALIDATE_CACHES = "validate-datasetcaches"
COMPONENT_INSTALLER = "installer"
COMPONENT_CLEANUP = "cleanup"
MANIFEST_KEY = "datasetcache.yaml"
MANIFEST_DIR = "/etc/dscache"
CACHE_MOUNT = "/cache"
MAX_NAME = 63  # Job names end up in pod labels (job-name), which are at most 63 characters


def short_hash(text: str, n: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _bounded(base: str, suffix: str) -> str:
    """`<base>-<suffix>` within MAX_NAME, cutting `base` (and hashing it if cut) when needed."""
    room = MAX_NAME - len(suffix) - 1
    if len(base) > room:
        base = f"{base[: room - 7].rstrip('-.')}-{short_hash(base, 6)}"
    return f"{base}-{suffix}"


def installer_job_name(cache_name: str, spec_hash: str) -> str:
    return _bounded(cache_name, f"install-{spec_hash[:10]}")


def cleanup_job_name(cache_name: str, uid: str) -> str:
    return _bounded(cache_name, f"cleanup-{uid.replace('-', '')[:8]}")


def installer_account_name(cache_name: str) -> str:
    return _bounded(cache_name, "dscache-installer")


def created_claim_name(cache_name: str) -> str:
    return _bounded(cache_name, "dscache")


def claim_label(claim: str) -> str:
    """A label value for a claim name (claim names may be longer than label values)."""
    return claim if len(claim) <= MAX_NAME else f"h-{short_hash(claim, 20)}"


def ref_name(namespace: str, name: str) -> str:
    """The ref the installer writes: `<namespace>.<name>` (as `dscache install -f` defaults to)."""
    return f"{namespace}.{name}"


def owner_reference(body: dict[str, object]) -> dict[str, object]:
    meta = body["metadata"]
    assert isinstance(meta, dict)
    return {
        "apiVersion": GROUP_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
