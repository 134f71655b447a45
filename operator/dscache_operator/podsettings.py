"""Pure: a DatasetCache's pod settings over the operator's defaults, and applied to the pods it runs.

Combining (`combine`), as Helm merges values and kustomize patches: a map (nodeSelector, podLabels,
podAnnotations, affinity, resources) merges into the default key by key, recursively; a list
(tolerations, imagePullSecrets, env, envFrom) or a single value (serviceAccountName,
priorityClassName) given by the cache replaces the default, and `[]` empties it; what the cache
leaves unset is the default.

Applying (`apply_to_pod`, `apply_to_container`): the operator's own labels win over podLabels (its
selectors and queue depend on them); a variable of the cache's env replaces one of the operator's
with the same name; the pods' serviceAccountName is the given one, else the installer's own account
(none for cleanup pods, which need no API access).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from dscache.api.podsettings import ContainerSettings, PodSettings

POD_FIELDS = tuple(to_camel(name) for name in PodSettings.model_fields)
CONTAINER_FIELDS = tuple(to_camel(name) for name in ContainerSettings.model_fields)


def _given(model: BaseModel, fields: tuple[str, ...]) -> dict[str, Any]:
    """The set fields of `model`, camelCase, as JSON; only those named in `fields`."""
    dumped = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {to_camel(k): v for k, v in dumped.items() if to_camel(k) in fields}


def merge(default: Any, own: Any) -> Any:
    """Maps merge recursively (own wins per key); anything else: own if given (not None), else default."""
    if isinstance(default, dict) and isinstance(own, dict):
        out = dict(default)
        for key, value in own.items():
            out[key] = merge(default.get(key), value)
        return out
    return copy.deepcopy(default if own is None else own)


def combine(default: BaseModel, own: BaseModel, fields: tuple[str, ...]) -> dict[str, Any]:
    """The effective settings `{camelCaseField: value}` (unset ones absent) of `own` over `default`.

    `default` is the operator's (settings `installer` or the prepare_* settings gathered), `own` the
    cache's spec.install or spec.prepare; `fields` restricts both to the pod (POD_FIELDS) or container
    (CONTAINER_FIELDS) settings.
    """
    base, mine = _given(default, fields), _given(own, fields)
    return {k: merge(base.get(k), mine.get(k)) for k in fields if k in base or k in mine}


def apply_to_container(container: dict[str, Any], effective: dict[str, Any]) -> dict[str, Any]:
    """`container` with the effective env (replacing same-named ones), envFrom and resources."""
    out = copy.deepcopy(container)
    env = effective.get("env")
    if env is not None:
        names = {e["name"] for e in env}
        out["env"] = [e for e in out.get("env") or [] if e["name"] not in names] + copy.deepcopy(env)
    if effective.get("envFrom") is not None:
        out["envFrom"] = copy.deepcopy(effective["envFrom"])
    resources = merge(out.get("resources") or {}, effective.get("resources"))
    if resources:
        out["resources"] = resources
    return out


_POD_SPEC_FIELDS = ("nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets")


def apply_to_pod(
    template: dict[str, Any], effective: dict[str, Any], own_account: str | None
) -> dict[str, Any]:
    """A Job's pod template with the effective settings: metadata, placement, account, containers."""
    out = copy.deepcopy(template)
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**(effective.get("podLabels") or {}), **(meta.get("labels") or {})}
    annotations = {**(effective.get("podAnnotations") or {}), **(meta.get("annotations") or {})}
    if annotations:
        meta["annotations"] = annotations
    spec = out["spec"]
    account = effective.get("serviceAccountName") or own_account
    if account:
        spec["serviceAccountName"] = account
    for key in _POD_SPEC_FIELDS:
        value = effective.get(key)
        if value not in (None, [], {}, ""):
            spec[key] = copy.deepcopy(value)
    for kind in ("initContainers", "containers"):
        if kind in spec:
            spec[kind] = [apply_to_container(c, effective) for c in spec[kind]]
    return out
