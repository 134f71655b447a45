"""The DatasetCache validating webhook's decisions: one source per dataType/source on a claim, and
what a cluster refuses whatever the claim holds (tried as an attacker would)."""

from __future__ import annotations

from typing import Any

import pytest

from dscache.api.spec import parse_spec
from dscache_operator.settings import Settings
from dscache_operator.validation import cluster_refusal, find_claim_conflict
from tests.factories import version_items


def body(name: str, prefix: str = "data", claim: str = "shared", **extra: Any) -> dict[str, Any]:
    spec = {
        "source": {"s3": {"bucket": "b", "prefix": prefix}},
        "versions": version_items("objects/thor=v1"),
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
    assert conflict(body("new", versions=version_items("objects/thor=v2")), body("old")) is None
    assert conflict(body("new", prefix="x", versions=version_items("scenes/a=v1")), body("old")) is None
    assert conflict(body("new", prefix="x", claim="mine"), body("old")) is None


def test_another_layout_of_the_same_source_is_a_different_origin() -> None:
    assert conflict(body("new", layout="Files"), body("old")) is not None


def test_created_claims_are_compared_by_their_generated_name() -> None:
    created = body("old", volume={"create": {"size": "1Gi"}})
    assert conflict(body("new", prefix="x", claim="old-dscache"), created) is not None


def test_resources_being_deleted_or_invalid_are_ignored() -> None:
    leaving = body("old")
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    broken = body("broken")
    broken["spec"]["versions"] = []
    assert conflict(body("new", prefix="x"), leaving, broken) is None


def test_http_credentials_never_appear_in_the_message() -> None:
    old = body("old")
    old["spec"]["source"] = {"http": {"url": "https://user:secret@data.example/x?token=abc"}}
    message = conflict(body("new"), old)
    assert message is not None and "secret" not in message and "abc" not in message


# --- What a cluster refuses whatever the claim holds (cluster_refusal) ------------------------------

ALLOWED = Settings(scratch_host_paths=("/mnt/nvme/dscache", "/scratch"))


def refusal(spec_patch: dict[str, Any], settings: Settings = ALLOWED) -> str | None:
    return cluster_refusal(parse_spec(body("c", **spec_patch)["spec"]), settings)


def host_scratch(path: str) -> dict[str, Any]:
    return {"scratch": {"mode": "HostPath", "hostPath": {"path": path}}}


def test_a_file_source_aimed_at_the_installers_token_is_refused_as_laptop_only() -> None:
    token = {"source": {"file": {"path": "/var/run/secrets/kubernetes.io/serviceaccount"}}}
    assert refusal(token) == (
        "spec.source.file is for laptops and CI (`dscache install` on a machine that has the directory): "
        "in a cluster the installer Job would copy whatever its own container can read, such as its "
        "credentials, into the cache, where every pod that uses the cache can read it; publish the "
        "directory to s3, huggingFace or http and use that source"
    )


def test_any_file_source_is_refused_in_a_cluster() -> None:
    assert refusal({"source": {"file": {"path": "/data/datasets"}}}) is not None


def test_host_scratch_outside_the_admins_directories_is_refused_naming_them() -> None:
    assert refusal(host_scratch("/etc")) == (
        "spec.scratch.hostPath.path: /etc is not a host directory this cluster allows for scratch (the "
        "chart value scratch.hostPaths: /mnt/nvme/dscache, /scratch): a host directory is mounted writable "
        "into every pod that uses it"
    )


def test_host_scratch_leaving_an_allowed_directory_by_dotdot_is_refused() -> None:
    message = refusal(host_scratch("/mnt/nvme/dscache/../../../etc"))
    assert message is not None
    assert message.startswith(
        "spec.scratch.hostPath.path: '/mnt/nvme/dscache/../../../etc' has a '..' segment"
    )


def test_host_scratch_below_an_allowed_directory_is_refused_a_symlink_there_could_lead_anywhere() -> None:
    """A pod that uses /scratch can create /scratch/escape -> /etc on the node; admission cannot see it."""
    message = refusal(host_scratch("/scratch/escape"))
    assert message is not None
    assert "/scratch/escape is not a host directory this cluster allows" in message
    assert "only the listed directories themselves are, not paths below them" in message


def test_host_scratch_is_refused_when_the_admin_allows_none() -> None:
    assert refusal(host_scratch("/mnt/nvme/dscache"), Settings()) == (
        "spec.scratch.hostPath.path: hostPath scratch is not allowed in this cluster: the admin allows no "
        "host directory (the chart value scratch.hostPaths); use emptyDir or none"
    )


@pytest.mark.parametrize("path", ["/mnt/nvme/dscache", "/mnt//nvme/dscache/", "/scratch/."])
def test_host_scratch_in_an_allowed_directory_however_spelled_is_fine(path: str) -> None:
    assert refusal(host_scratch(path)) is None


def test_ordinary_specs_pass() -> None:
    assert refusal({}) is None
    assert refusal({"scratch": {"mode": "EmptyDir"}}, Settings()) is None
