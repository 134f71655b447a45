"""AdmissionReview in, AdmissionReview out: the HTTP contract of the two webhooks around `admission`.

Served by `admissionserver` at `/mutate-pods` and `/validate-datasetcaches` (the paths the chart's
webhook configurations use). A refusal (`Denied`) is `allowed: false` with code 400 and the message
kubectl shows; any other failure is code 500 naming the webhook, logged with its traceback. The pod's
patch is a JSON Patch, base64-encoded; warnings go to `response.warnings`.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from dscache_operator import metrics, names
from dscache_operator.admission import Admission
from dscache_operator.podpatch import Denied, JsonPatch

log = logging.getLogger("dscache_operator.webhooks")

HOOKS = (names.WEBHOOK_MUTATE_PODS, names.WEBHOOK_VALIDATE_CACHES)


def build_response(
    review: dict[str, Any],
    *,
    allowed: bool = True,
    message: str = "",
    code: int = 400,
    patch: JsonPatch | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The AdmissionReview answering `review` (same apiVersion, its request's uid)."""
    payload: dict[str, Any] = {"uid": (review.get("request") or {}).get("uid", ""), "allowed": allowed}
    if not allowed:
        payload["status"] = {"code": code, "message": message}
    if patch:
        payload["patchType"] = "JSONPatch"
        payload["patch"] = base64.b64encode(json.dumps(patch).encode()).decode("ascii")
    if warnings:
        payload["warnings"] = list(warnings)
    return {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": payload,
    }


async def _mutate(admission: Admission, review: dict[str, Any]) -> dict[str, Any]:
    request = review["request"]
    pod = request.get("object") or {}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if (
        request.get("operation") != "CREATE"
        or names.LABEL_CACHE not in labels
        or names.LABEL_COMPONENT in labels  # our own Jobs' pods (the configurations exclude them too)
    ):
        return build_response(review)
    namespace = request.get("namespace") or pod["metadata"].get("namespace") or ""
    ops, warnings = await admission.mutate_pod(pod, namespace)
    return build_response(review, patch=ops, warnings=warnings)


async def _validate(admission: Admission, review: dict[str, Any]) -> dict[str, Any]:
    request = review["request"]
    if request.get("operation") not in ("CREATE", "UPDATE"):
        return build_response(review)
    cache = dict(request["object"])
    cache["metadata"] = {"namespace": request.get("namespace", ""), **cache["metadata"]}
    old = request.get("oldObject") if request.get("operation") == "UPDATE" else None
    await admission.validate_cache(cache, old, dry_run=bool(request.get("dryRun")))
    return build_response(review)


async def answer(admission: Admission, hook: str, review: dict[str, Any]) -> dict[str, Any]:
    """The response of webhook `hook` (one of HOOKS) to an AdmissionReview request."""
    try:
        if hook == names.WEBHOOK_MUTATE_PODS:
            return await _mutate(admission, review)
        return await _validate(admission, review)
    except Denied as err:
        return build_response(review, allowed=False, message=str(err))
    except Exception as err:  # a bug or the API server failing a fallback read: refuse, say where
        log.exception("webhook %s failed", hook)
        return build_response(
            review, allowed=False, code=500, message=f"dscache webhook {hook} failed: {err}"
        )


def build_app(admission: Admission) -> web.Application:
    """The aiohttp application serving both webhooks (POST /<hook>)."""

    async def serve(request: web.Request) -> web.Response:
        hook = request.match_info["hook"]
        if hook not in HOOKS:
            raise web.HTTPNotFound(text=f"no webhook {hook}; these are served: {', '.join(HOOKS)}")
        started = time.perf_counter()
        try:
            review = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the body is not an AdmissionReview (JSON)") from None
        if not isinstance(review, dict) or not isinstance(review.get("request"), dict):
            raise web.HTTPBadRequest(text="the body is not an AdmissionReview (no request)")
        response = await answer(admission, hook, review)
        metrics.ADMISSION_SECONDS.labels(hook).observe(time.perf_counter() - started)
        return web.json_response(response)

    app = web.Application()
    app.router.add_post("/{hook}", serve)
    return app
