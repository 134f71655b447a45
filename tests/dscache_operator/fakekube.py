"""An in-memory API server implementing `KubeApi`, for the reconciler's and admission's unit tests.

Objects live under their URL path; reads return copies (as JSON over HTTP would); create refuses an
existing name, patch is RFC 7386 merge patch, the status path patches only the status; label
selectors support `k=v`, `k!=v`, `k` and `!k`. Every write is logged in order, and the Events a
reconciler posts through `post_event` are kept, so tests assert what was created, patched, deleted.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from dscache_operator.kubeapi import KubeApi, collection_path, dsc_path

Verb = Literal["create", "patch", "delete"]


@dataclass(frozen=True)
class Write:
    """One write the API server received: verb, object path, body (None for delete)."""

    verb: Verb
    path: str
    body: dict[str, Any] | None


@dataclass(frozen=True)
class Event:
    involved: str  # "<namespace>/<name>"
    kind: Literal["Normal", "Warning"]
    reason: str
    message: str


def object_path(obj: dict[str, Any]) -> str:
    """Where the API server keeps an object: its collection URL and name."""
    meta = obj["metadata"]
    if obj["kind"] == "DatasetCache":
        return dsc_path(meta["namespace"], meta["name"])
    if obj["kind"] == "Pod":
        return f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
    return f"{collection_path(obj)}/{meta['name']}"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class FakeKube:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    _clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- what the world does (users, controllers): not logged as the operator's writes -----------

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as another client would (creationTimestamp and uid filled in if absent)."""
        stored = copy.deepcopy(obj)
        meta = stored["metadata"]
        tick = next(self._clock)
        meta.setdefault("creationTimestamp", f"2026-01-01T00:{tick // 60:02d}:{tick % 60:02d}Z")
        meta.setdefault("uid", f"00000000-0000-0000-0000-{tick:012d}")
        self.objects[object_path(stored)] = stored
        return copy.deepcopy(stored)

    def obj(self, path: str) -> dict[str, Any]:
        """The stored object (a copy); KeyError when absent."""
        return copy.deepcopy(self.objects[path])

    def kinds(self, kind: str) -> list[str]:
        """Names of the stored objects of a kind, in creation order."""
        return [o["metadata"]["name"] for o in self.objects.values() if o["kind"] == kind]

    def writes_of(self, verb: Verb) -> list[Write]:
        return [w for w in self.writes if w.verb == verb]

    def post_event(
        self, body: dict[str, Any], kind: Literal["Normal", "Warning"], *, reason: str, message: str
    ) -> None:
        """An EventSink: what the reconciler would post through kopf."""
        meta = body["metadata"]
        self.events.append(Event(f"{meta['namespace']}/{meta['name']}", kind, reason, message))

    # --- KubeApi ------------------------------------------------------------------------------

    async def get(self, path: str) -> dict[str, Any] | None:
        found = self.objects.get(path)
        return copy.deepcopy(found) if found is not None else None

    async def list(self, path: str, label_selector: str = "") -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for p, o in self.objects.items()
            if p.rsplit("/", 1)[0] == path and matches(o["metadata"].get("labels") or {}, label_selector)
        ]

    async def create(self, manifest: dict[str, Any]) -> bool:
        path = object_path(manifest)
        self.writes.append(Write("create", path, copy.deepcopy(manifest)))
        if path in self.objects:
            return False
        self.put(manifest)
        return True

    async def patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        self.writes.append(Write("patch", path, copy.deepcopy(patch)))
        target = path.removesuffix("/status")
        if target not in self.objects:
            return None
        if target != path:  # the status subresource: only the status changes
            patch = {"status": patch.get("status")}
        self.objects[target] = merge_patch(self.objects[target], patch)
        return copy.deepcopy(self.objects[target])

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self.patch(f"{dsc_path(namespace, name)}/status", {"status": status})

    async def delete(self, path: str) -> None:
        self.writes.append(Write("delete", path, None))
        self.objects.pop(path, None)


def as_api(fake: FakeKube) -> KubeApi:
    """The fake where a KubeApi is expected (mypy checks the fake against the protocol here)."""
    return fake
