"""Admission decisions from the index, with the in-memory API: which DatasetCache a pod gets, denials,
warnings, conflicts; and which requests reach the API server (normally none)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from dscache_operator.admission import Admission, readiness_warning
from dscache_operator.cacheindex import CacheIndex
from dscache_operator.kubeapi import dsc_path
from dscache_operator.podpatch import Denied
from dscache_operator.settings import Settings
from tests.dscache_operator.fakekube import FakeKube, as_api
from tests.factories import version_items

SPEC = {
    "source": {"s3": {"bucket": "b"}},
    "versions": version_items("objects/thor=v1"),
    "volume": {"claimName": "shared"},
}


def cache(name: str = "objs", phase: str = "Ready", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dscache.io/v1alpha1",
        "kind": "DatasetCache",
        "metadata": {"name": name, "namespace": "ml", "generation": 2},
        "spec": {**SPEC, **spec},
        "status": {"phase": phase, "observedGeneration": 2},
    }


def with_api(*caches: dict[str, Any], listed: bool = True, **settings: Any) -> tuple[Admission, FakeKube]:
    """Admission over an index that has listed `caches` (or nothing yet), and the API it may call."""
    kube = FakeKube()
    index = CacheIndex(["ml"])
    for c in caches:
        kube.put(c)
    if listed:
        index.replace("ml", [kube.obj(dsc_path("ml", c["metadata"]["name"])) for c in caches])
    return Admission(index, as_api(kube), Settings(**settings)), kube


def admission(*caches: dict[str, Any], **settings: Any) -> Admission:
    return with_api(*caches, **settings)[0]


def pod(label: str = "objs") -> dict[str, Any]:
    return {"metadata": {"labels": {"dscache.io/cache": label}}, "spec": {"containers": [{"name": "m"}]}}


def test_pod_gets_the_patch_of_the_cache_its_label_names() -> None:
    ops, warnings = asyncio.run(admission(cache()).mutate_pod(pod(), "ml"))
    assert any(op["path"] == "/spec/initContainers" for op in ops) and warnings == []


def test_missing_cache_is_denied() -> None:
    with pytest.raises(Denied, match="DatasetCache other does not exist in namespace ml"):
        asyncio.run(admission(cache()).mutate_pod(pod("other"), "ml"))


def test_cache_being_deleted_is_denied() -> None:
    leaving = cache()
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    with pytest.raises(Denied, match="is being deleted"):
        asyncio.run(admission(leaving).mutate_pod(pod(), "ml"))


def test_pods_of_namespaces_the_operator_does_not_watch_are_left_alone() -> None:
    ops, _ = asyncio.run(admission(cache(), namespaces=("team-a",)).mutate_pod(pod("nope"), "ml"))
    assert ops == []


def test_pod_admitted_before_the_cache_is_ready_gets_a_warning() -> None:
    _, warnings = asyncio.run(admission(cache(phase="Installing"), prepare_wait=90).mutate_pod(pod(), "ml"))
    assert warnings == [
        "DatasetCache objs is Installing: the pod's init container waits up to 90s for its versions"
    ]


def test_ready_for_an_older_generation_is_not_ready() -> None:
    stale = cache()
    stale["status"]["observedGeneration"] = 1
    assert readiness_warning(stale, Settings()) is not None


def test_validation_refuses_a_clash_on_the_claim() -> None:
    new = cache("new", source={"s3": {"bucket": "other"}})
    with pytest.raises(Denied, match="claim shared already holds objects/thor"):
        asyncio.run(admission(cache(), new).validate_cache(new, None))


def test_validation_passes_updates_that_keep_the_spec() -> None:
    """A resource that clashes (admitted before the webhook existed) must stay deletable."""
    new = cache("new", source={"s3": {"bucket": "other"}})
    finalizing = copy.deepcopy(new)
    finalizing["metadata"]["finalizers"] = []
    asyncio.run(admission(cache(), new).validate_cache(finalizing, new))


def test_validation_refuses_an_invalid_spec_with_the_field() -> None:
    bad = cache("bad", versions=version_items("objects/thor=v1", "objects/thor=v2"))
    with pytest.raises(Denied, match=r"spec.versions: versions\[1\] repeats dataType/source objects/thor"):
        asyncio.run(admission(bad).validate_cache(bad, None))


def _validate(new: dict[str, Any], **settings: Any) -> tuple[str, FakeKube]:
    """The validating webhook's refusal of `new` (it must refuse), and the API it had."""
    adm, kube = with_api(**settings)
    with pytest.raises(Denied) as err:
        asyncio.run(adm.validate_cache(new, None))
    return str(err.value), kube


def test_validation_refuses_a_file_source_aimed_at_the_installers_token_and_writes_nothing() -> None:
    new = cache("steal", source={"file": {"path": "/var/run/secrets/kubernetes.io/serviceaccount"}})
    message, kube = _validate(new)
    assert message.startswith("spec.source.file is for laptops and CI")
    assert "installer Job would copy whatever its own container can read" in message
    assert kube.writes == [] and kube.events == []


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc", "/etc is not a host directory this cluster allows for scratch"),
        ("/mnt/nvme/../../etc", "'/mnt/nvme/../../etc' has a '..' segment"),
        ("/mnt/nvme/escape", "only the listed directories themselves are, not paths below them"),
    ],
)
def test_validation_refuses_host_scratch_outside_the_admins_directories(path: str, reason: str) -> None:
    new = cache("hostile", scratch={"mode": "HostPath", "hostPath": {"path": path}})
    message, kube = _validate(new, scratch_host_paths=("/mnt/nvme",))
    assert message.startswith("spec.scratch.hostPath.path: ") and reason in message
    assert kube.writes == []


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        (
            "versions",
            version_items("objects/thor=v1", envName={"objects/thor": "LD_PRELOAD"}),
            "spec.versions[0].envName: LD_PRELOAD is not allowed",
        ),
        ("mountPath", "/usr", "spec.mountPath: '/usr' is the system directory /usr"),
    ],
)
def test_validation_refuses_what_the_crd_refuses_when_an_older_crd_let_it_through(
    field: str, value: Any, reason: str
) -> None:
    """Helm never upgrades a CRD: the webhook refuses these on its own."""
    message, kube = _validate(cache("old-crd", **{field: value}))
    assert message.startswith(reason)
    assert kube.writes == []


def test_admitting_pods_makes_no_request_to_the_api_server() -> None:
    caches = [cache(f"c{i}", versions=version_items(f"objects/s{i}=v1")) for i in range(50)]
    adm, kube = with_api(*caches)
    for i in (0, 17, 49, 17):
        ops, _ = asyncio.run(adm.mutate_pod(pod(f"c{i}"), "ml"))
        assert any(op["path"] == "/spec/initContainers" for op in ops)
    assert kube.requests == []


def test_a_cache_the_watch_has_not_shown_yet_costs_one_read() -> None:
    """Created a moment before the pod: its watch event may not have arrived; not a reason to refuse."""
    adm, kube = with_api(listed=True)
    kube.put(cache("fresh", phase="Installing"))
    _, warnings = asyncio.run(adm.mutate_pod(pod("fresh"), "ml"))
    assert warnings and "DatasetCache fresh is Installing" in warnings[0]
    assert kube.requests == [("get", dsc_path("ml", "fresh"))]


def test_a_label_naming_no_cache_is_denied_after_one_read() -> None:
    adm, kube = with_api(cache())
    with pytest.raises(Denied, match="DatasetCache other does not exist"):
        asyncio.run(adm.mutate_pod(pod("other"), "ml"))
    assert kube.requests == [("get", dsc_path("ml", "other"))]


def test_validation_is_a_lookup_in_the_index() -> None:
    others = [cache(f"c{i}", versions=version_items(f"objects/s{i}=v1")) for i in range(50)]
    adm, kube = with_api(cache(), *others)
    clash = cache("new", source={"s3": {"bucket": "other"}})
    with pytest.raises(Denied, match=r"claim shared already holds objects/thor .* for DatasetCache objs"):
        asyncio.run(adm.validate_cache(clash, None))
    asyncio.run(adm.validate_cache(cache("fine", versions=version_items("objects/new=v1")), None))
    assert kube.requests == []


def test_validation_before_the_index_has_listed_reads_the_namespace() -> None:
    adm, kube = with_api(cache(), listed=False)
    with pytest.raises(Denied, match="claim shared already holds objects/thor"):
        asyncio.run(adm.validate_cache(cache("new", source={"s3": {"bucket": "other"}}), None))
    assert kube.requests == [("list", dsc_path("ml"))]


def test_second_cache_of_a_bulk_apply_clashing_with_the_first_is_refused_before_any_watch_event() -> None:
    adm, kube = with_api()
    first = cache("first")
    asyncio.run(adm.validate_cache(first, None))  # admitted; the API server stores it, the watch lags
    with pytest.raises(Denied, match="for DatasetCache first"):
        asyncio.run(adm.validate_cache(cache("second", source={"s3": {"bucket": "other"}}), None))
    assert kube.requests == []


def test_a_dry_run_holds_no_slot() -> None:
    adm, _ = with_api()
    asyncio.run(adm.validate_cache(cache("first"), None, dry_run=True))
    asyncio.run(adm.validate_cache(cache("second", source={"s3": {"bucket": "other"}}), None))
