"""List, then watch, the DatasetCaches of one scope into the admission index (client-go's informer).

kopf watches DatasetCaches for the reconciler, in kopf's event loop, and hands each event to the
object's own worker after a batching window, behind that object's running handlers. Admission runs in
its own loop (`admissionserver`), so it keeps its own watch: one more connection per scope, and an
index that follows the API server within the watch's own delay, whatever the reconciler is doing.

The protocol: list (the index becomes that listing, `CacheIndex.replace`), then watch from the
list's resourceVersion, continuing after each server-side timeout from the last version seen
(bookmarks included). An expired version (410 Gone) lists again at once; any other failure (the API
server restarting, the network) lists again after a backoff, the index serving what it held meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from dscache_operator.cacheindex import CacheIndex
from dscache_operator.kubeapi import WatchApi, dsc_collection

log = logging.getLogger("dscache_operator.informer")

WATCH_SECONDS = 300
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)


class WatchFailed(RuntimeError):
    """The watch stream reported an error other than an expired version."""


class Informer:
    """Keeps `index` in step with the DatasetCaches of `scope` (a namespace, or None: all)."""

    def __init__(
        self,
        api: WatchApi,
        index: CacheIndex,
        scope: str | None,
        *,
        watch_seconds: int = WATCH_SECONDS,
        backoff: Sequence[float] = BACKOFF_SECONDS,
    ) -> None:
        self.api, self.index, self.scope = api, index, scope
        self.path = dsc_collection(scope)
        self.watch_seconds, self.backoff = watch_seconds, backoff

    async def run(self) -> None:
        """Forever (until cancelled)."""
        failures = 0
        while True:
            try:
                await self._list_and_watch()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the API server away or refusing: retry, keep what we hold
                delay = self.backoff[min(failures, len(self.backoff) - 1)]
                failures += 1
                log.warning("watching %s failed (%s); listing again in %gs", self.path, err, delay)
                await asyncio.sleep(delay)

    async def _list_and_watch(self) -> None:
        """Returns when the watch's version expired (list again); raises on any other failure."""
        items, version = await self.api.list_versioned(self.path)
        self.index.replace(self.scope, items)
        while True:
            async for event in self.api.watch(self.path, version, self.watch_seconds):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return
                    raise WatchFailed(f"{obj.get('code')} {obj.get('message')}")
                version = obj["metadata"]["resourceVersion"]
                if kind in ("ADDED", "MODIFIED"):
                    self.index.upsert(obj)
                elif kind == "DELETED":
                    self.index.remove(obj["metadata"]["namespace"], obj["metadata"]["name"])
