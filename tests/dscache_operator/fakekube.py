"""An in-memory API server implementing `KubeApi` and `WatchApi`, for the operator's unit tests.

Objects live under their URL path; reads return copies (as JSON over HTTP would); create refuses an
existing name, patch is RFC 7386 merge patch, the status path patches only the status; label
selectors support `k=v`, `k!=v`, `k` and `!k`. Every write is logged in order, and the Events a
reconciler posts through `post_event` are kept, so tests assert what was created, patched, deleted.
Every request, reads and watches included, is logged in `requests`, so tests assert that a path
makes none. Each change gets the next resourceVersion and is kept in `changes`, which watches replay
(polling, so a server in another thread sees changes made by the test); `compact()` makes older
versions expire (a watch from one gets 410 Gone), `fail_next_watches` makes watches fail.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from dscache_operator.kubeapi import KubeApi, WatchApi, collection_path, dsc_path

Verb = Literal["create", "patch", "delete"]
Change = Literal["ADDED", "MODIFIED", "DELETED"]


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


def in_collection(path: str, collection: str) -> bool:
    """Whether an object path lies in a collection (namespaced, or the same kind in all namespaces)."""
    parent = path.rsplit("/", 1)[0]
    return parent == collection or re.sub(r"/namespaces/[^/]+", "", parent) == collection


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
    requests: list[tuple[str, str]] = field(default_factory=list)  # (verb, path), in order
    changes: list[tuple[Change, str, dict[str, Any]]] = field(default_factory=list)  # (kind, path, object)
    compacted: int = 0  # watches from an older resourceVersion get 410 Gone
    fail_next_watches: int = 0
    webhook_configurations: dict[str, dict[str, Any]] = field(default_factory=dict)
    _clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    version: int = 0

    def _record(self, kind: Change, path: str, obj: dict[str, Any]) -> None:
        """Store (or, DELETED, forget) an object under the next resourceVersion; keep the change."""
        self.version = next(self._clock)
        obj["metadata"]["resourceVersion"] = str(self.version)
        if kind == "DELETED":
            self.objects.pop(path, None)
        else:
            self.objects[path] = obj
        self.changes.append((kind, path, copy.deepcopy(obj)))

    # --- what the world does (users, controllers): not logged as the operator's writes -----------

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as another client would (creationTimestamp and uid filled in if absent)."""
        stored = copy.deepcopy(obj)
        meta = stored["metadata"]
        tick = next(self._clock)
        meta.setdefault("creationTimestamp", f"2026-01-01T00:{tick // 60:02d}:{tick % 60:02d}Z")
        meta.setdefault("uid", f"00000000-0000-0000-0000-{tick:012d}")
        path = object_path(stored)
        self._record("MODIFIED" if path in self.objects else "ADDED", path, stored)
        return copy.deepcopy(stored)

    def remove(self, path: str) -> None:
        """Delete an object as another client would."""
        self._record("DELETED", path, copy.deepcopy(self.objects[path]))

    def compact(self) -> None:
        """Expire every resourceVersion so far, as etcd's compaction does (lists start after it)."""
        self.version = self.compacted = next(self._clock)

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
        self.requests.append(("get", path))
        found = self.objects.get(path)
        return copy.deepcopy(found) if found is not None else None

    async def list(self, path: str, label_selector: str = "") -> list[dict[str, Any]]:
        self.requests.append(("list", path))
        return [
            copy.deepcopy(o)
            for p, o in self.objects.items()
            if in_collection(p, path) and matches(o["metadata"].get("labels") or {}, label_selector)
        ]

    async def create(self, manifest: dict[str, Any]) -> bool:
        path = object_path(manifest)
        self.requests.append(("create", path))
        self.writes.append(Write("create", path, copy.deepcopy(manifest)))
        if path in self.objects:
            return False
        self.put(manifest)
        return True

    async def patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        self.requests.append(("patch", path))
        self.writes.append(Write("patch", path, copy.deepcopy(patch)))
        target = path.removesuffix("/status")
        if target not in self.objects:
            return None
        if target != path:  # the status subresource: only the status changes
            patch = {"status": patch.get("status")}
        self._record("MODIFIED", target, merge_patch(self.objects[target], patch))
        return copy.deepcopy(self.objects[target])

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self.patch(f"{dsc_path(namespace, name)}/status", {"status": status})

    async def delete(self, path: str) -> None:
        self.requests.append(("delete", path))
        self.writes.append(Write("delete", path, None))
        if path in self.objects:
            self.remove(path)

    # --- WatchApi -----------------------------------------------------------------------------

    async def list_versioned(self, path: str) -> tuple[list[dict[str, Any]], str]:
        items = await self.list(path)
        return items, str(self.version)

    async def watch(self, path: str, resource_version: str, timeout: int) -> AsyncIterator[dict[str, Any]]:
        self.requests.append(("watch", path))
        if self.fail_next_watches:
            self.fail_next_watches -= 1
            raise ConnectionError("the fake API server dropped the watch")
        seen = int(resource_version)
        if seen < self.compacted:
            yield {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
            return
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for kind, where, obj in self.changes[:]:
                version = int(obj["metadata"]["resourceVersion"])
                if version > seen:
                    seen = version
                    if in_collection(where, path):
                        yield {"type": kind, "object": copy.deepcopy(obj)}
            await asyncio.sleep(0.005)

    # --- the admission server's dev-mode registration and shutdown ----------------------------

    async def ensure_webhook_configuration(self, config: dict[str, Any]) -> None:
        path = f"/apis/admissionregistration.k8s.io/v1/{config['kind'].lower()}s/{config['metadata']['name']}"
        self.requests.append(("apply", path))
        self.objects[path] = copy.deepcopy(config)
        self.webhook_configurations[path] = copy.deepcopy(config)

    async def close(self) -> None:
        self.requests.append(("close", ""))


def as_api(fake: FakeKube) -> KubeApi:
    """The fake where a KubeApi is expected (mypy checks the fake against the protocol here)."""
    return fake


def as_watch_api(fake: FakeKube) -> WatchApi:
    return fake
