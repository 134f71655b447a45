"""The DatasetCaches admission reads, in memory: fed by a watch (`informer`), looked up per request.

Admission decides from this index, never from one API request per admission (issue 17): a pod's
DatasetCache is a dict lookup by (namespace, name), and the claim conflicts of a new spec are a
lookup by (namespace, claim, `<dataType>/<source>` slot), so validating each of N resources applied at
once costs the same whatever N is (before: a list of the namespace per validation, N^2 on a bulk apply).

Staleness, and what the callers do about it:
- A watch event arrives a few milliseconds after the write it reports. A DatasetCache created just
  before a pod that names it may be missing: `get` returns None and admission makes one GET (`admission`).
- Until a scope's first listing is done (`synced`), conflict validation lists that namespace instead.
- A resource admitted by the validating webhook is not seen until its event arrives; a second resource
  applied right after it (`kubectl apply -f dir/`) would not see it. `admitted` records what the
  webhook let through, and `sharing` includes it until the watch shows it or `pending_ttl` seconds pass
  (a write refused after our webhook, e.g. by another webhook, then holds its slots that long).

Not thread-safe: the admission server's one event loop owns it (informer writes, handlers read).
The one exception is `statuses`, which the metrics scrape calls from its own thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dscache.api.spec import DatasetCacheSpec, SpecError, parse_spec
from dscache_operator.validation import ClaimUse, claim_use

Key = tuple[str, str]  # (namespace, name)
PENDING_TTL = 30.0  # seconds; the API server's longest webhook timeout


@dataclass(frozen=True)
class Entry:
    """One DatasetCache as admission needs it.

    `body`: metadata (name, namespace, generation, resourceVersion, deletionTimestamp), spec and status
    of the object as last seen (not to be mutated); `spec` parsed, or `error` saying why it is invalid;
    `use`: the claim slots it holds (None when it is invalid, has no volume or is being deleted).
    """

    body: dict[str, Any]
    spec: DatasetCacheSpec | None
    error: str | None
    use: ClaimUse | None

    @property
    def deleting(self) -> bool:
        return bool(self.body["metadata"].get("deletionTimestamp"))


META_KEPT = ("name", "namespace", "generation", "resourceVersion", "deletionTimestamp", "uid")


def make_entry(obj: dict[str, Any]) -> Entry:
    """The entry of a DatasetCache object (annotations, managedFields and the rest are dropped)."""
    meta = obj["metadata"]
    body = {
        "metadata": {k: meta[k] for k in META_KEPT if k in meta},
        "spec": obj.get("spec"),
        "status": obj.get("status") or {},
    }
    try:
        spec = parse_spec(obj.get("spec"))
    except SpecError as err:
        return Entry(body, None, str(err), None)
    use = None if meta.get("deletionTimestamp") else claim_use(meta["name"], spec)
    return Entry(body, spec, None, use)


def _key(obj: dict[str, Any]) -> Key:
    return str(obj["metadata"]["namespace"]), str(obj["metadata"]["name"])


@dataclass
class _Pending:
    use: ClaimUse | None
    spec: Any
    deadline: float


class CacheIndex:
    """DatasetCaches by (namespace, name) and claim slots by (namespace, claim, slot).

    `scopes`: what the informers list, namespaces or `None` for the whole cluster; `synced` once each
    has been listed. `clock`: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        scopes: Iterable[str | None],
        *,
        pending_ttl: float = PENDING_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: dict[Key, Entry] = {}
        self._slots: dict[tuple[str, str, str], set[str]] = {}  # (ns, claim, slot) -> names
        self._pending: dict[Key, _Pending] = {}
        self._unsynced = set(scopes)
        self._ttl, self._clock = pending_ttl, clock

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def synced(self) -> bool:
        """Every scope listed once: a missing entry then means "not there a moment ago"."""
        return not self._unsynced

    def get(self, namespace: str, name: str) -> Entry | None:
        return self._entries.get((namespace, name))

    def statuses(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(namespace, name, status) of every DatasetCache held, for the per-cache metrics.

        Safe from another thread: `list(dict.items())` copies in one C call under the GIL, and
        entries are replaced, never changed in place.
        """
        return [(ns, name, entry.body["status"]) for (ns, name), entry in list(self._entries.items())]

    # --- fed by the informer --------------------------------------------------------------------

    def upsert(self, obj: dict[str, Any]) -> None:
        """An ADDED or MODIFIED object (or one of a listing)."""
        key = _key(obj)
        self._drop(key)
        entry = make_entry(obj)
        self._entries[key] = entry
        if entry.use is not None:
            for slot in entry.use.slots:
                self._slots.setdefault((key[0], entry.use.claim, slot), set()).add(key[1])
        pending = self._pending.get(key)
        if pending is not None and pending.spec == obj.get("spec"):
            del self._pending[key]  # the watch caught up with what the webhook admitted

    def remove(self, namespace: str, name: str) -> None:
        """A DELETED object."""
        self._drop((namespace, name))
        self._pending.pop((namespace, name), None)

    def replace(self, scope: str | None, objs: Iterable[dict[str, Any]]) -> None:
        """A full listing of `scope` (a namespace, or None: all): what it lacks is gone."""
        objs = list(objs)
        listed = {_key(o) for o in objs}
        for key in [k for k in self._entries if (scope is None or k[0] == scope) and k not in listed]:
            self.remove(*key)
        for obj in objs:
            self.upsert(obj)
        self._unsynced.discard(scope)

    def _drop(self, key: Key) -> None:
        old = self._entries.pop(key, None)
        if old is None or old.use is None:
            return
        for slot in old.use.slots:
            slot_key = (key[0], old.use.claim, slot)
            holders = self._slots.get(slot_key)
            if holders is not None:
                holders.discard(key[1])
                if not holders:
                    del self._slots[slot_key]

    # --- fed by the validating webhook ----------------------------------------------------------

    def admitted(self, obj: dict[str, Any]) -> None:
        """The webhook let this create or spec update through; it counts until the watch shows it."""
        entry = make_entry(obj)
        self._pending[_key(obj)] = _Pending(entry.use, obj.get("spec"), self._clock() + self._ttl)

    # --- read by the validating webhook ---------------------------------------------------------

    def sharing(self, namespace: str, use: ClaimUse) -> list[tuple[str, ClaimUse]]:
        """The uses of `use.claim` in `namespace` holding any of its slots (admitted ones included).

        A resource admitted but not yet seen counts with its admitted spec instead of the one seen.
        """
        now = self._clock()
        for key in [k for k, p in self._pending.items() if p.deadline <= now]:
            del self._pending[key]
        found: dict[str, ClaimUse] = {}
        for slot in use.slots:
            for name in self._slots.get((namespace, use.claim, slot), ()):
                if (namespace, name) not in self._pending:
                    entry_use = self._entries[(namespace, name)].use
                    assert entry_use is not None
                    found[name] = entry_use
        for (ns, name), pending in self._pending.items():
            theirs = pending.use if ns == namespace else None
            if theirs is not None and theirs.claim == use.claim and theirs.slots & use.slots:
                found[name] = theirs
        return sorted(found.items())
