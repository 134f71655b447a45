"""Reconciliation: drive a DatasetCache to its spec with the pure builders and the one API module.

Per resource and per claim an asyncio lock serialises decisions (the operator is the only writer of
Jobs, and one replica reconciles: kopf peering), so two resources on one claim never both start an
installer. The API is reached through the `KubeApi` protocol and Events through an `EventSink`, both
given by the kopf handlers.

Recovery needs no imperative step: a failed install records `failedAttempts` and `nextRetryAt`
(capped exponential backoff, `status.retry_delay`); a reconcile at or after that time (kopf's timer
on Failed resources) deletes the failed Job and starts it again, and a new value of the
`dscache.io/reconcile-requested-at` annotation (Flux's `reconcile.fluxcd.io/requestedAt` idea) does so
at once. A spec change starts a new Job with the count at 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Literal, Protocol

import kopf

from dscache.api.spec import DatasetCacheSpec, SpecError, parse_spec
from dscache_operator import metrics, names
from dscache_operator.cleanup import build_cleanup_job
from dscache_operator.installer import (
    build_configmap,
    build_installer_job,
    build_installer_rbac,
    installer_account,
    spec_hash,
)
from dscache_operator.kubeapi import KubeApi, dsc_path
from dscache_operator.settings import Settings
from dscache_operator.status import (
    Phase,
    build_status,
    describe_blocker,
    format_time,
    get_blocker,
    get_job_failure,
    get_job_seconds,
    get_job_state,
    get_versions_in_use,
    parse_time,
    retry_delay,
)
from dscache_operator.validation import cluster_refusal
from dscache_operator.volume import build_pvc, get_claim_name

log = logging.getLogger("dscache_operator")


class EventSink(Protocol):
    """Posts a Kubernetes Event about a DatasetCache (in the operator: kopf's own event queue)."""

    def __call__(
        self, body: dict[str, Any], kind: Literal["Normal", "Warning"], *, reason: str, message: str
    ) -> None: ...


def _generation_served(body: dict[str, Any], job: dict[str, Any]) -> int:
    """The generation a Job fulfils: the current one if the spec still hashes to the Job's, else its own."""
    annotations = job["metadata"].get("annotations") or {}
    try:
        current = spec_hash(parse_spec(body.get("spec")))
    except SpecError:
        current = ""
    if current == annotations.get(names.ANNOTATION_SPEC_HASH):
        return int(body["metadata"].get("generation", 0))
    return int(annotations.get(names.ANNOTATION_GENERATION, 0))


WRITERS_FRESH_SECONDS = 5.0  # one list of a claim's writers answers every queued resource's poll this long


def _own_installer(job: dict[str, Any], name: str) -> bool:
    labels = job["metadata"].get("labels") or {}
    return bool(
        labels.get(names.LABEL_CACHE) == name
        and labels.get(names.LABEL_COMPONENT) == names.COMPONENT_INSTALLER
    )


def blocker_for(writers: list[dict[str, Any]], name: str, own_job: str) -> dict[str, Any] | None:
    """The active writer `name` waits for: another resource's (its own superseded installers are
    replaced, not waited for)."""
    return get_blocker([w for w in writers if not _own_installer(w, name)], own_job)


def _jobs(ns: str) -> str:
    return f"/apis/batch/v1/namespaces/{ns}/jobs"


def _pods(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def retry_requested(body: dict[str, Any]) -> str | None:
    """The reconcile-requested-at annotation's value if it is one not acted on yet."""
    value = (body["metadata"].get("annotations") or {}).get(names.ANNOTATION_RECONCILE_REQUESTED)
    handled = (body.get("status") or {}).get("lastHandledReconcileAt")
    return value if value and value != handled else None


def retry_due(body: dict[str, Any], now: dt.datetime) -> bool:
    """Pure: retry a Failed install now (asked for by annotation, or its backoff has run out)."""
    if retry_requested(body) is not None:
        return True
    when = (body.get("status") or {}).get("nextRetryAt")
    try:
        return bool(when) and parse_time(str(when)) <= now
    except ValueError:
        return True  # an unreadable time (edited by hand): retry rather than stay Failed


class Reconciler:
    def __init__(
        self,
        kube: KubeApi,
        settings: Settings,
        event: EventSink,
        clock: Callable[[], dt.datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.settings, self._event, self._clock = kube, settings, event, clock
        self._monotonic = monotonic
        self._resource_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._claim_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._writers_seen: dict[tuple[str, str], tuple[float, list[dict[str, Any]]]] = {}

    async def _set_phase(self, body: dict[str, Any], phase: Phase, note: str = "", **extra: Any) -> None:
        meta = body["metadata"]
        status = build_status(phase, int(meta.get("generation", 0)), body.get("status") or {}, note, **extra)
        await self.kube.patch_status(meta["namespace"], meta["name"], status)
        metrics.set_queued(meta["namespace"], meta["name"], phase.name == "Queued")

    async def _writers(self, ns: str, claim: str) -> list[dict[str, Any]]:
        """The installer and cleanup Jobs on a claim."""
        return await self.kube.list(_jobs(ns), f"{names.LABEL_CLAIM}={names.claim_label(claim)}")

    async def _queue(self, body: dict[str, Any], blocker: dict[str, Any], claim: str) -> None:
        """Queued behind `blocker` (the status written only when its message changes)."""
        meta, status = body["metadata"], body.get("status") or {}
        message = describe_blocker(blocker, claim)
        if status.get("phase") != "Queued" or status.get("message") != message:
            log.info("queued %s/%s: %s", meta["namespace"], meta["name"], message)
            await self._set_phase(body, Phase("Queued", "WaitingForWriter", message), claimName=claim)

    async def _in_use(self, ns: str) -> list[str]:
        """Versions linked by workload pods of any DatasetCache in the namespace (not our Jobs)."""
        pods = await self.kube.list(_pods(ns), f"{names.LABEL_CACHE},!{names.LABEL_COMPONENT}")
        return get_versions_in_use(pods)

    async def reconcile(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        async with self._resource_locks[(meta["namespace"], meta["name"])]:
            fresh = await self.kube.get(dsc_path(meta["namespace"], meta["name"]))
            if fresh is None or fresh["metadata"].get("deletionTimestamp"):
                return
            await self._reconcile(fresh)

    async def _reconcile(self, body: dict[str, Any]) -> None:
        meta, status = body["metadata"], body.get("status") or {}
        ns, name = meta["namespace"], meta["name"]
        try:
            spec = parse_spec(body.get("spec"))
        except SpecError as err:
            await self._set_phase(body, Phase("Failed", "InvalidSpec", str(err)))
            return
        if spec.volume is None:  # the CRD requires it; the model allows none for laptop installs
            await self._set_phase(
                body, Phase("Failed", "InvalidSpec", "spec.volume is required in a cluster")
            )
            return
        refused = cluster_refusal(spec, self.settings)
        if refused is not None:  # the webhook refuses it too, unless it was off when this was stored
            await self._set_phase(body, Phase("Failed", "InvalidSpec", refused))
            return
        claim = get_claim_name(name, spec)
        digest = spec_hash(spec)
        job_name = names.installer_job_name(name, digest)
        if (
            status.get("phase") == "Ready"
            and status.get("installJob") == job_name
            and status.get("observedGeneration") == meta.get("generation")
        ):
            return
        job = await self.kube.get(f"{_jobs(ns)}/{job_name}")
        if job is not None and not self._retrying(body, job):
            await self._observe(body, job)
            return
        # Another writer on the claim: queue before creating anything (its turn may be hours away,
        # and hundreds may queue on one claim); checked again under the claim's lock below.
        blocker = blocker_for(await self._writers(ns, claim), name, job_name)
        if blocker is not None:
            await self._queue(body, blocker, claim)
            return
        if job is not None:  # a failed install whose retry is due: the same Job again
            log.info("retrying %s for %s/%s", job_name, ns, name)
            await self.kube.delete(f"{_jobs(ns)}/{job_name}")
            if await self.kube.get(f"{_jobs(ns)}/{job_name}") is not None:
                return  # still being deleted: its DELETED event (or the timer) starts it
        await self._ensure_volume(body, spec, claim)
        await self._ensure_rbac(body, spec, claim)
        await self._drop_superseded(ns, name, job_name)
        async with self._claim_locks[(ns, claim)]:
            blocker = blocker_for(await self._writers(ns, claim), name, job_name)
            if blocker is not None:
                await self._queue(body, blocker, claim)
                return
            in_use = await self._in_use(ns)
            await self.kube.create(build_configmap(body, spec, job_name, claim))
            job = build_installer_job(
                body, spec, self.settings, job_name=job_name, claim=claim, digest=digest, in_use=in_use
            )
            created = await self.kube.create(job)
        message = f"installer Job {job_name} installs {len(spec.versions)} version(s)"
        same = status.get("installJob") == job_name  # a retry keeps counting; a new spec starts at 0
        requested = (meta.get("annotations") or {}).get(names.ANNOTATION_RECONCILE_REQUESTED)
        await self._set_phase(
            body,
            Phase("Installing", "InstallStarted", message),
            claimName=claim,
            installJob=job_name,
            failedAttempts=int(status.get("failedAttempts") or 0) if same else 0,
            lastHandledReconcileAt=requested or status.get("lastHandledReconcileAt"),
            progress={
                "bytesDone": 0,
                "bytesTotal": 0,
                "itemsDone": 0,
                "itemsTotal": 0,
                "archivesDone": 0,
                "archivesTotal": 0,
                "percent": "0%",
            },
        )
        if created:
            metrics.INSTALLS_STARTED.inc()
            self._event(body, "Normal", reason="InstallStarted", message=message)
            log.info("started %s for %s/%s", job_name, ns, name)

    async def _ensure_rbac(self, body: dict[str, Any], spec: DatasetCacheSpec, claim: str) -> None:
        """The installer's account, Role and RoleBinding; an existing binding gets the current subjects
        (the cache may have named another ServiceAccount since)."""
        for obj in build_installer_rbac(body, claim, installer_account(spec, self.settings)):
            if not await self.kube.create(obj) and obj["kind"] == "RoleBinding":
                meta = obj["metadata"]
                await self.kube.patch(
                    f"/apis/rbac.authorization.k8s.io/v1/namespaces/{meta['namespace']}/rolebindings/"
                    f"{meta['name']}",
                    {"subjects": obj["subjects"]},
                )

    def _retrying(self, body: dict[str, Any], job: dict[str, Any]) -> bool:
        """The Job is this resource's failed install, already reported, and its retry is due."""
        status = body.get("status") or {}
        return (
            get_job_state(job) == "failed"
            and status.get("phase") == "Failed"
            and status.get("installJob") == job["metadata"]["name"]
            and retry_due(body, self._clock())
        )

    async def _ensure_volume(self, body: dict[str, Any], spec: DatasetCacheSpec, claim: str) -> None:
        """Create the owned PVC, or check the named one exists (else Pending, retried by kopf)."""
        assert spec.volume is not None
        if spec.volume.create is not None:
            await self.kube.create(build_pvc(body, spec, claim))
            return
        if await self.kube.get(
            f"/api/v1/namespaces/{body['metadata']['namespace']}/persistentvolumeclaims/{claim}"
        ):
            return
        message = f"PersistentVolumeClaim {claim} does not exist"
        if (body.get("status") or {}).get("message") != message:
            await self._set_phase(body, Phase("Pending", "ClaimNotFound", message), claimName=claim)
        raise kopf.TemporaryError(message, delay=10)

    async def _drop_superseded(self, ns: str, name: str, keep: str) -> None:
        """Installer Jobs (and manifests) of earlier specs of this resource: the new Job replaces them."""
        selector = f"{names.LABEL_CACHE}={name},{names.LABEL_COMPONENT}={names.COMPONENT_INSTALLER}"
        for job in await self.kube.list(_jobs(ns), selector):
            old = job["metadata"]["name"]
            if old != keep:
                await self.kube.delete(f"{_jobs(ns)}/{old}")
                await self.kube.delete(f"/api/v1/namespaces/{ns}/configmaps/{old}")

    async def _observe(self, body: dict[str, Any], job: dict[str, Any]) -> None:
        """Phase and conditions from the installer Job's state; events and metrics on transitions."""
        meta, status = body["metadata"], body.get("status") or {}
        job_name = job["metadata"]["name"]
        state = get_job_state(job)
        if state == "active":
            if status.get("phase") != "Installing" or status.get("installJob") != job_name:
                await self._set_phase(
                    body,
                    Phase("Installing", "InstallRunning", f"installer Job {job_name} is running"),
                    installJob=job_name,
                )
            return
        generation = _generation_served(body, job)
        body = {**body, "metadata": {**meta, "generation": generation}}
        if state == "succeeded":
            already = status.get("phase") == "Ready" and status.get("installJob") == job_name
            if already and status.get("observedGeneration") == generation:
                return
            installed = status.get("installed") or []
            message = f"{len(installed)} version(s) installed ({status.get('size', '0 B')})"
            await self._set_phase(
                body, Phase("Ready", "Installed", message), installJob=job_name, failedAttempts=0
            )
            if already:  # only observedGeneration moved (an equivalent spec): no new install to count
                return
            metrics.INSTALLS_SUCCEEDED.inc()
            metrics.INSTALLED_BYTES.inc(sum(int(v.get("bytes", 0)) for v in installed))
            seconds = get_job_seconds(job)
            if seconds is not None:
                metrics.INSTALL_DURATION.observe(seconds)
            self._event(body, "Normal", reason="InstallSucceeded", message=message)
            return
        if status.get("phase") == "Failed" and status.get("installJob") == job_name:
            return
        pods = await self.kube.list(_pods(meta["namespace"]), f"job-name={job_name}")
        message = get_job_failure(job, pods)
        failures = int(status.get("failedAttempts") or 0) + 1
        delay = retry_delay(failures, self.settings.retry_base_seconds, self.settings.retry_max_seconds)
        retry_at = format_time(self._clock() + dt.timedelta(seconds=delay))
        note = (
            f"{failures} failed attempt(s); next retry at {retry_at}, or at once on a new "
            f"{names.ANNOTATION_RECONCILE_REQUESTED} annotation"
        )
        await self._set_phase(
            body,
            Phase("Failed", "InstallFailed", message),
            note,
            installJob=job_name,
            failedAttempts=failures,
            nextRetryAt=retry_at,
        )
        metrics.INSTALLS_FAILED.inc()
        seconds = get_job_seconds(job)
        if seconds is not None:
            metrics.INSTALL_DURATION.observe(seconds)
        self._event(body, "Warning", reason="InstallFailed", message=message)
        log.warning("install failed for %s/%s: %s", meta["namespace"], meta["name"], message)

    async def job_changed(self, job: dict[str, Any], deleted: bool) -> None:
        """An installer or cleanup Job changed: update its DatasetCache, wake those queued behind it."""
        meta = job["metadata"]
        labels, ns = meta.get("labels") or {}, meta["namespace"]
        cache = labels.get(names.LABEL_CACHE)
        retry: dict[str, Any] | None = None
        if cache and labels.get(names.LABEL_COMPONENT) == names.COMPONENT_INSTALLER:
            async with self._resource_locks[(ns, cache)]:
                body = await self.kube.get(dsc_path(ns, cache))
                status = (body or {}).get("status") or {}
                if (
                    body is not None
                    and not body["metadata"].get("deletionTimestamp")
                    and status.get("installJob") == meta["name"]
                ):
                    if not deleted:
                        await self._observe(body, job)
                    elif status.get("phase") == "Failed":
                        retry = body  # deleting a failed installer Job is how a user asks for a retry
            if retry is not None:
                await self.reconcile(retry)
        if deleted or get_job_state(job) != "active":
            claim = (meta.get("annotations") or {}).get(names.ANNOTATION_CLAIM)
            if claim:
                await self.wake_queued(ns, claim)

    async def poll_queued(self, body: dict[str, Any]) -> None:
        """The queue timer, a fallback for a missed Job event: reconcile a Queued resource once no
        other writer is active on its claim. One list of the claim's writers answers the polls of all
        its queued resources for WRITERS_FRESH_SECONDS, so N queued resources cost one request."""
        meta, status = body["metadata"], body.get("status") or {}
        claim = status.get("claimName")
        if status.get("phase") != "Queued" or not claim:
            await self.reconcile(body)
            return
        key, now = (meta["namespace"], str(claim)), self._monotonic()
        seen = self._writers_seen.get(key)
        if seen is None or now - seen[0] >= WRITERS_FRESH_SECONDS:
            seen = (now, await self._writers(*key))
            self._writers_seen[key] = seen
        if blocker_for(seen[1], meta["name"], "") is None:
            await self.reconcile(body)

    async def wake_queued(self, ns: str, claim: str) -> None:
        for body in await self.kube.list(dsc_path(ns)):
            status = body.get("status") or {}
            if status.get("phase") == "Queued" and status.get("claimName") == claim:
                await self.reconcile(body)

    async def finalize(self, body: dict[str, Any]) -> None:
        """Deletion: Retain keeps the data (a created PVC is orphaned); Delete runs the cleanup Job first."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        metrics.set_queued(ns, name, False)
        try:
            spec = parse_spec(body.get("spec"))
        except SpecError:
            return
        if spec.volume is None:
            return
        claim = get_claim_name(name, spec)
        if spec.retention.on_delete == "Retain":
            if spec.volume.create is not None:
                await self.kube.patch(
                    f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}",
                    {"metadata": {"ownerReferences": None}},
                )
            return
        await self._drop_superseded(ns, name, keep="")
        job = build_cleanup_job(body, self.settings, claim=claim, in_use=await self._in_use(ns), spec=spec)
        job_name = job["metadata"]["name"]
        current = await self.kube.get(f"{_jobs(ns)}/{job_name}")
        if current is None:
            if await self.kube.create(job):
                self._event(
                    body,
                    "Normal",
                    reason="CleanupStarted",
                    message=f"cleanup Job {job_name} removes this cache's versions",
                )
            raise kopf.TemporaryError(f"waiting for cleanup Job {job_name}", delay=2)
        state = get_job_state(current)
        if state == "active":
            raise kopf.TemporaryError(f"waiting for cleanup Job {job_name}", delay=2)
        if state == "failed":
            pods = await self.kube.list(_pods(ns), f"job-name={job_name}")
            self._event(body, "Warning", reason="CleanupFailed", message=get_job_failure(current, pods))
        else:
            self._event(
                body, "Normal", reason="CleanupSucceeded", message=f"versions of {ns}.{name} released"
            )
