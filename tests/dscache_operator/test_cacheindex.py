"""The admission index: lookups by name and by claim slot, listings, and what the webhook admitted."""

from __future__ import annotations

from typing import Any

from dscache.api.spec import parse_spec
from dscache_operator.cacheindex import CacheIndex
from dscache_operator.validation import ClaimUse, claim_use


def dsc(
    name: str, ns: str = "ml", claim: str = "shared", bucket: str = "b", **versions: str
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "generation": 1, "resourceVersion": "7"},
        "spec": {
            "source": {"s3": {"bucket": bucket}},
            "versions": [
                {"dataType": "objects", "source": src, "version": ver}
                for src, ver in (versions or {"thor": "v1"}).items()
            ],
            "volume": {"claimName": claim},
        },
    }


def use_of(obj: dict[str, Any]) -> ClaimUse:
    found = claim_use(obj["metadata"]["name"], parse_spec(obj["spec"]))
    assert found is not None
    return found


def holders(index: CacheIndex, obj: dict[str, Any]) -> list[str]:
    return [name for name, _ in index.sharing(obj["metadata"]["namespace"], use_of(obj))]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lookup_by_name_and_by_claim_slot() -> None:
    index = CacheIndex(["ml"])
    index.replace("ml", [dsc("a"), dsc("b", thor="v2"), dsc("c", claim="other"), dsc("d", scenes="v1")])
    entry = index.get("ml", "a")
    assert entry is not None and entry.spec is not None and entry.body["metadata"]["name"] == "a"
    assert index.get("ml", "zz") is None and index.get("other-ns", "a") is None
    # Slot objects/thor of claim shared: a and b (any version); not c (other claim), not d (other slot).
    assert holders(index, dsc("new", bucket="x")) == ["a", "b"]


def test_a_spec_change_moves_the_slots_and_a_deletion_frees_them() -> None:
    index = CacheIndex(["ml"])
    index.replace("ml", [dsc("a")])
    index.upsert(dsc("a", claim="elsewhere"))
    assert holders(index, dsc("new")) == []
    assert holders(index, dsc("new", claim="elsewhere")) == ["a"]
    index.remove("ml", "a")
    assert holders(index, dsc("new", claim="elsewhere")) == [] and index.get("ml", "a") is None


def test_a_cache_being_deleted_is_found_but_holds_no_slot() -> None:
    index = CacheIndex(["ml"])
    leaving = dsc("a")
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    index.replace("ml", [leaving])
    entry = index.get("ml", "a")
    assert entry is not None and entry.deleting
    assert holders(index, dsc("new", bucket="x")) == []


def test_an_invalid_cache_is_found_with_its_error_and_holds_no_slot() -> None:
    index = CacheIndex(["ml"])
    broken = dsc("a")
    broken["spec"]["versions"] = []
    index.replace("ml", [broken])
    entry = index.get("ml", "a")
    assert entry is not None and entry.spec is None and entry.error and "versions" in entry.error
    assert holders(index, dsc("new", bucket="x")) == []


def test_a_listing_replaces_its_scope_only_and_marks_it_synced() -> None:
    index = CacheIndex(["ml", "research"])
    index.upsert(dsc("gone"))
    index.upsert(dsc("kept", ns="research"))
    assert not index.synced
    index.replace("ml", [dsc("a")])
    assert not index.synced and index.get("ml", "gone") is None
    index.replace("research", [dsc("kept", ns="research")])
    assert index.synced and index.get("research", "kept") is not None and len(index) == 2


def test_admitted_counts_until_the_watch_shows_it() -> None:
    index = CacheIndex(["ml"], clock=Clock())
    index.replace("ml", [])
    first = dsc("first")
    index.admitted(first)
    assert holders(index, dsc("second", bucket="x")) == ["first"]
    index.upsert(first)  # its watch event: now held as seen, no longer as admitted
    index.remove("ml", "first")
    assert holders(index, dsc("second", bucket="x")) == []


def test_admitted_but_never_stored_stops_counting_after_the_ttl() -> None:
    """Refused after our webhook (by another one, say): its slots are free again after `pending_ttl`."""
    clock = Clock()
    index = CacheIndex(["ml"], pending_ttl=30, clock=clock)
    index.replace("ml", [])
    index.admitted(dsc("ghost"))
    clock.now += 29
    assert holders(index, dsc("second", bucket="x")) == ["ghost"]
    clock.now += 2
    assert holders(index, dsc("second", bucket="x")) == []


def test_an_admitted_update_counts_instead_of_the_spec_seen() -> None:
    index = CacheIndex(["ml"], clock=Clock())
    index.replace("ml", [dsc("a")])
    index.admitted(dsc("a", claim="elsewhere"))  # moving to another claim, not seen yet
    assert holders(index, dsc("new", bucket="x")) == []
    assert holders(index, dsc("new", claim="elsewhere", bucket="x")) == ["a"]
