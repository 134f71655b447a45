"""The informer keeps the admission index in step with the API server: list, watch, list again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from dscache_operator.cacheindex import CacheIndex
from dscache_operator.informer import Informer
from dscache_operator.kubeapi import dsc_path
from tests.dscache_operator.fakekube import FakeKube, as_watch_api
from tests.factories import version_items


def dsc(name: str, ns: str = "ml") -> dict[str, Any]:
    return {
        "apiVersion": "dscache.io/v1alpha1",
        "kind": "DatasetCache",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "source": {"s3": {"bucket": "b"}},
            "versions": version_items("objects/thor=v1"),
            "volume": {"claimName": "shared"},
        },
    }


def status_of(index: CacheIndex, name: str) -> Any:
    entry = index.get("ml", name)
    return entry.body["status"] if entry is not None else None


async def until(what: str, check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def run(kube: FakeKube, index: CacheIndex, scope: str | None, script: Callable[[], Any]) -> None:
    async def main() -> None:
        informer = Informer(as_watch_api(kube), index, scope, watch_seconds=1, backoff=(0.01,))
        task = asyncio.create_task(informer.run())
        try:
            await script()
        finally:
            task.cancel()

    asyncio.run(main())


def test_lists_then_follows_creations_changes_and_deletions() -> None:
    kube, index = FakeKube(), CacheIndex(["ml"])
    kube.put(dsc("a"))
    kube.put(dsc("elsewhere", ns="other"))

    async def script() -> None:
        await until("the listing", lambda: index.synced)
        assert index.get("ml", "a") is not None and index.get("other", "elsewhere") is None
        kube.put(dsc("b"))
        await until("b", lambda: index.get("ml", "b") is not None)
        changed = dsc("b")
        changed["status"] = {"phase": "Ready"}
        kube.put(changed)
        await until("b's status", lambda: status_of(index, "b") == {"phase": "Ready"})
        kube.remove(dsc_path("ml", "a"))
        await until("a gone", lambda: index.get("ml", "a") is None)

    run(kube, index, "ml", script)
    assert [verb for verb, _ in kube.requests] == ["list", "watch"]


def test_all_namespaces_when_the_scope_is_the_cluster() -> None:
    kube, index = FakeKube(), CacheIndex([None])
    kube.put(dsc("a", ns="team-a"))

    async def script() -> None:
        await until("the listing", lambda: index.synced)
        kube.put(dsc("b", ns="team-b"))
        await until("b", lambda: index.get("team-b", "b") is not None)
        assert index.get("team-a", "a") is not None

    run(kube, index, None, script)


def test_an_expired_version_lists_again_and_drops_what_went_missing() -> None:
    """Events lost to compaction (410 Gone): the next listing is the truth."""
    kube, index = FakeKube(), CacheIndex(["ml"])
    kube.put(dsc("a"))
    kube.put(dsc("b"))

    async def script() -> None:
        await until("the listing", lambda: index.get("ml", "b") is not None)
        del kube.objects[dsc_path("ml", "b")]  # deleted, and the event compacted away
        kube.put(dsc("c"))
        kube.compact()  # the informer's version is now too old to watch from
        await until("the relisting", lambda: index.get("ml", "b") is None, timeout=10)
        assert index.get("ml", "a") is not None and index.get("ml", "c") is not None

    run(kube, index, "ml", script)
    assert [verb for verb, _ in kube.requests][:4] == ["list", "watch", "watch", "list"]


def test_a_failed_watch_lists_again_after_a_backoff() -> None:
    kube, index = FakeKube(), CacheIndex(["ml"])
    kube.fail_next_watches = 1

    async def script() -> None:
        await until("a second listing", lambda: [v for v, _ in kube.requests].count("list") == 2)
        kube.put(dsc("a"))
        await until("a", lambda: index.get("ml", "a") is not None)

    run(kube, index, "ml", script)
