"""kopf admission handlers and their server; imported (registered) only when the webhook is enabled.

kopf serves each handler at `/<handler id>`: `/mutate-pods` and `/validate-datasetcaches`, the paths
the chart's webhook configurations use. Dev mode lets kopf manage URL configurations to this process.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import kopf

from dscache.api.resource import API_GROUP, API_VERSION, PLURAL
from dscache_operator import devcerts, names
from dscache_operator.admission import Admission
from dscache_operator.podpatch import Denied, JsonPatch, apply_patch
from dscache_operator.settings import Settings


def build_server(ours: Settings) -> kopf.WebhookServer:
    hook = ours.webhook
    if not hook.dev:
        return kopf.WebhookServer(addr=hook.addr, port=hook.port, certfile=hook.cert, pkeyfile=hook.key)
    certs = devcerts.generate(Path(tempfile.mkdtemp(prefix="dscache-webhook-")), hook.host)
    return kopf.WebhookServer(
        addr=hook.host,
        port=hook.port,
        host=hook.host,
        cafile=certs.ca,
        certfile=certs.cert,
        pkeyfile=certs.key,
    )


@kopf.on.startup()
async def serve_admission(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours: Settings = memo.dscache_settings
    settings.admission.server = build_server(ours)
    if ours.webhook.dev:
        settings.admission.managed = f"{ours.peering_name}.{names.PREFIX}"


def _admission(memo: kopf.Memo) -> Admission:
    return Admission(memo.kube, memo.dscache_settings)


def _apply(ops: JsonPatch, raw: Any) -> None:
    raw.update(apply_patch(dict(raw), ops))


@kopf.on.mutate(
    "",
    "v1",
    "pods",
    id=names.WEBHOOK_MUTATE_PODS,
    operations=["CREATE"],
    labels={names.LABEL_CACHE: kopf.PRESENT, names.LABEL_COMPONENT: kopf.ABSENT},
)
async def mutate_pod(
    body: kopf.Body, patch: kopf.Patch, warnings: list[str], memo: kopf.Memo, **_: Any
) -> None:
    try:
        ops, notes = await _admission(memo).mutate_pod(dict(body), body.metadata.namespace or "")
    except Denied as err:
        raise kopf.AdmissionError(str(err), code=400) from None
    if ops:
        patch.fns.append(functools.partial(_apply, ops))
    warnings.extend(notes)


@kopf.on.validate(
    API_GROUP, API_VERSION, PLURAL, id=names.WEBHOOK_VALIDATE_CACHES, operations=["CREATE", "UPDATE"]
)
async def validate_cache(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    old = kwargs.get("old")  # the stored object, on UPDATE
    try:
        await _admission(memo).validate_cache(dict(body), dict(old) if old is not None else None)
    except Denied as err:
        raise kopf.AdmissionError(str(err), code=400) from None
