"""The DatasetCache validating webhook's decision: one source per dataType/source on a claim."""

from __future__ import annotations

from typing import Any

from dscache.api.spec import parse_spec
from dscache_operator.validation import find_claim_conflict


def body(name: str, prefix: str = "data", claim: str = "shared", **extra: Any) -> dict[str, Any]:
    spec = {
        "source": {"s3": {"bucket": "b", "prefix": prefix}},
        "versions": {"objects": {"thor": "v1"}},
        "volume": {"claimName": claim},
        **extra,
    }
    return {"metadata": {"name": name, "namespace": "ml"}, "spec": spec}


def conflict(new: dict[str, Any], *others: dict[str, Any]) -> str | None:
    return find_claim_conflict(new["metadata"]["name"], parse_spec(new["spec"]), [new, *others])


def test_same_slot_from_another_source_on_the_same_claim_is_refused() -> None:
    message = conflict(body("new", prefix="elsewhere"), body("old"))
    assert message is not None
    assert "claim shared already holds objects/thor from s3://b/data" in message
    assert "DatasetCache old" in message and "another claim" in message


def test_same_source_other_versions_or_other_slots_or_other_claims_are_fine() -> None:
    assert conflict(body("new", versions={"objects": {"thor": "v2"}}), body("old")) is None
    assert conflict(body("new", prefix="x", versions={"scenes": {"a": "v1"}}), body("old")) is None
    assert conflict(body("new", prefix="x", claim="mine"), body("old")) is None


def test_another_layout_of_the_same_source_is_a_different_origin() -> None:
    assert conflict(body("new", layout="files"), body("old")) is not None


def test_created_claims_are_compared_by_their_generated_name() -> None:
    created = body("old", volume={"create": {"size": "1Gi"}})
    assert conflict(body("new", prefix="x", claim="old-dscache"), created) is not None


def test_resources_being_deleted_or_invalid_are_ignored() -> None:
    leaving = body("old")
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    broken = body("broken")
    broken["spec"]["versions"] = {}
    assert conflict(body("new", prefix="x"), leaving, broken) is None


def test_http_credentials_never_appear_in_the_message() -> None:
    old = body("old")
    old["spec"]["source"] = {"http": {"url": "https://user:secret@data.example/x?token=abc"}}
    message = conflict(body("new"), old)
    assert message is not None and "secret" not in message and "abc" not in message
