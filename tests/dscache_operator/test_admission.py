"""Admission orchestration with the in-memory API: which DatasetCache a pod gets, denials, warnings."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from dscache_operator.admission import Admission, readiness_warning
from dscache_operator.podpatch import Denied
from dscache_operator.settings import Settings
from tests.dscache_operator.fakekube import FakeKube, as_api

SPEC = {
    "source": {"s3": {"bucket": "b"}},
    "versions": {"objects": {"thor": "v1"}},
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


def admission(*caches: dict[str, Any], **settings: Any) -> Admission:
    kube = FakeKube()
    for c in caches:
        kube.put(c)
    return Admission(as_api(kube), Settings(**settings))


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
    bad = cache("bad", envNames={"objects/other": "X"})
    with pytest.raises(Denied, match="envNames names 'objects/other'"):
        asyncio.run(admission(bad).validate_cache(bad, None))


def _validate(new: dict[str, Any], **settings: Any) -> tuple[str, FakeKube]:
    """The validating webhook's refusal of `new` (it must refuse), and the API it had."""
    kube = FakeKube()
    with pytest.raises(Denied) as err:
        asyncio.run(Admission(as_api(kube), Settings(**settings)).validate_cache(new, None))
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
    new = cache("hostile", scratch={"mode": "hostPath", "hostPath": {"path": path}})
    message, kube = _validate(new, scratch_host_paths=("/mnt/nvme",))
    assert message.startswith("spec.scratch.hostPath.path: ") and reason in message
    assert kube.writes == []


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("envNames", {"objects/thor": "LD_PRELOAD"}, "objects/thor: LD_PRELOAD is not allowed"),
        ("mountPath", "/usr", "'/usr' is the system directory /usr"),
    ],
)
def test_validation_refuses_what_the_crd_refuses_when_an_older_crd_let_it_through(
    field: str, value: Any, reason: str
) -> None:
    """Helm never upgrades a CRD: the webhook refuses these on its own."""
    message, kube = _validate(cache("old-crd", **{field: value}))
    assert message.startswith(f"spec.{field}: {reason}")
    assert kube.writes == []
