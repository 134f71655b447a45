"""kopf handlers: thin adapters from kopf's causes to the Reconciler (registered on import)."""

from __future__ import annotations

import gc
import logging
from typing import Any, Literal, cast

import kopf

from dscache.api.resource import API_GROUP, API_VERSION, PLURAL
from dscache_operator import metrics, names
from dscache_operator.kube import Kube
from dscache_operator.reconcile import Reconciler
from dscache_operator.settings import Settings

RESOURCE = (API_GROUP, API_VERSION, PLURAL)
log = logging.getLogger("dscache_operator")
# Job events wake queued resources at once; the timer is a fallback, and one list of a claim's
# writers answers all its queued resources' polls (Reconciler.poll_queued).
QUEUE_POLL_SECONDS = 30.0


def post_event(
    body: dict[str, Any], kind: Literal["Normal", "Warning"], *, reason: str, message: str
) -> None:
    """The reconciler's EventSink: kopf's own event queue."""
    kopf.event(cast(Any, body), type=kind, reason=reason, message=message)


def configure(kopf_settings: kopf.OperatorSettings) -> None:
    """Our finalizer and annotation prefix, no status.kopf (the schema prunes it), bounded watches."""
    kopf_settings.persistence.finalizer = names.FINALIZER
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.PREFIX)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.PREFIX, key="last-handled-configuration"
    )
    kopf_settings.watching.server_timeout = 300
    kopf_settings.watching.client_timeout = 330
    kopf_settings.watching.connect_timeout = 30
    kopf_settings.posting.level = logging.WARNING  # our own Events say what happened; not every handler run


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure(settings)
    ours: Settings = memo.dscache_settings
    kube = await Kube.connect()
    if not ours.standalone:
        await kube.ensure_peering(ours.peering_name, ours.namespaces)
    memo.kube = kube
    memo.reconciler = Reconciler(kube, ours, post_event)
    if ours.metrics_port:
        metrics.serve(ours.metrics_port)
    freeze_startup_objects()


def freeze_startup_objects() -> None:
    """Modules, kopf's and our set-up are never garbage: keep the collector from walking them again.

    Each full collection stops every thread, the admission server's too. About 96,000 objects exist
    at this point, half or more of what each full collection walked while bench/bench_load.py
    reconciled 500 DatasetCaches: 13 of those took 0.1-1 s (2-core machine under load) before this
    and the cheaper queue of the reconciler; 9 took 2.2 s in all after.
    """
    gc.collect()
    gc.freeze()
    log.info("%d start-up objects frozen", gc.get_freeze_count())


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await memo.kube.close()


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
@kopf.on.update(*RESOURCE, field=("metadata", "annotations", names.ANNOTATION_RECONCILE_REQUESTED))
async def reconcile(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await memo.reconciler.reconcile(dict(body))


def _queued(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") == "Queued"


@kopf.timer(*RESOURCE, interval=QUEUE_POLL_SECONDS, when=_queued)
async def retry_queued(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A fallback: Job events normally wake queued resources at once."""
    await memo.reconciler.poll_queued(dict(body))


def _retry_pending(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") == "Failed" and bool(status.get("nextRetryAt"))


@kopf.timer(*RESOURCE, interval=QUEUE_POLL_SECONDS, when=_retry_pending)
async def retry_failed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A Failed install is retried once its `status.nextRetryAt` has passed (the reconciler decides)."""
    await memo.reconciler.reconcile(dict(body))


@kopf.on.delete(*RESOURCE)
async def finalize(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await memo.reconciler.finalize(dict(body))


@kopf.on.event(
    "batch", "v1", "jobs", labels={names.LABEL_COMPONENT: kopf.PRESENT, names.LABEL_CACHE: kopf.PRESENT}
)
async def job_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await memo.reconciler.job_changed(dict(body), deleted=event.get("type") == "DELETED")
