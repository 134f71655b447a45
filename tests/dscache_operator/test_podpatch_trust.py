"""What a pod author (and a DatasetCache author, through the pod patch) can make the injection do:
host scratch only in the admin's directories, and no credentials in the injected init container."""

from __future__ import annotations

from typing import Any

import pytest

from dscache.api.spec import parse_spec
from dscache_operator.podpatch import Denied, apply_patch, build_patch
from dscache_operator.settings import Settings
from tests.factories import version_items

ADMIN = Settings(scratch_host_paths=("/mnt/nvme/dscache",))
SPEC: dict[str, Any] = {
    "source": {"s3": {"bucket": "b", "secretRef": {"name": "creds"}}},
    "versions": version_items("objects/thor=v1"),
    "volume": {"claimName": "shared"},
}


def cache(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "objs", "namespace": "ml"}, "spec": {**SPEC, **spec}, "status": {}}


def pod(scratch: str | None = None) -> dict[str, Any]:
    annotations = {} if scratch is None else {"dscache.io/scratch": scratch}
    meta = {"name": "train", "labels": {"dscache.io/cache": "objs"}, "annotations": annotations}
    return {"metadata": meta, "spec": {"containers": [{"name": "main", "image": "trainer"}]}}


def inject(p: dict[str, Any], c: dict[str, Any] | None = None, settings: Settings = ADMIN) -> dict[str, Any]:
    c = c or cache()
    return apply_patch(p, build_patch(p, c, parse_spec(c["spec"]), settings))


def host_volume(out: dict[str, Any]) -> dict[str, Any]:
    [volume] = [v for v in out["spec"]["volumes"] if v["name"] == "dscache-scratch"]
    return dict(volume["hostPath"])


@pytest.mark.parametrize(
    ("annotation", "reason"),
    [
        ("hostPath:/", "/ is not a host directory this cluster allows"),
        ("hostPath:/etc", "/etc is not a host directory this cluster allows"),
        (
            "hostPath:/var/lib/kubelet/pods",
            "/var/lib/kubelet/pods is not a host directory this cluster allows",
        ),
        ("hostPath:/mnt/nvme/dscache/../../../etc", "has a '..' segment"),
        ("hostPath:/mnt/nvme/dscache/escape", "only the listed directories themselves are, not paths below"),
        ("hostPath:/mnt/nvme/dscache-evil", "/mnt/nvme/dscache-evil is not a host directory this cluster"),
    ],
)
def test_a_pod_cannot_pick_a_host_directory_the_admin_does_not_list(annotation: str, reason: str) -> None:
    with pytest.raises(Denied) as err:
        inject(pod(annotation))
    message = str(err.value)
    assert message.startswith(f"annotation dscache.io/scratch={annotation!r}: ")
    assert reason in message


def test_without_admin_directories_host_scratch_is_refused_and_emptydir_still_works() -> None:
    with pytest.raises(Denied) as err:
        inject(pod("hostPath:/mnt/nvme/dscache"), settings=Settings())
    assert str(err.value) == (
        "annotation dscache.io/scratch='hostPath:/mnt/nvme/dscache': hostPath scratch is not allowed in "
        "this cluster: the admin allows no host directory (the chart value scratch.hostPaths); use emptyDir "
        "or none"
    )
    out = inject(pod("emptyDir:1Gi"), settings=Settings())
    assert {"name": "dscache-scratch", "emptyDir": {"sizeLimit": "1Gi"}} in out["spec"]["volumes"]


def test_a_caches_host_scratch_is_checked_again_when_the_pod_is_built() -> None:
    """Admitted while the webhook was off, or before the admin narrowed the list."""
    hostile = cache(scratch={"mode": "HostPath", "hostPath": {"path": "/etc"}})
    with pytest.raises(Denied) as err:
        inject(pod(), hostile)
    assert str(err.value).startswith(
        "DatasetCache objs spec.scratch.hostPath.path: /etc is not a host directory this cluster allows"
    )
    with pytest.raises(Denied, match=r"^DatasetCache objs spec\.scratch\.hostPath\.path: /etc "):
        inject(pod("hostPath"), hostile)  # the annotation without a path takes the cache's


def test_an_allowed_directory_is_mounted_in_its_normal_form() -> None:
    out = inject(pod("hostPath:/mnt//nvme/./dscache/"))
    assert host_volume(out) == {"path": "/mnt/nvme/dscache", "type": "DirectoryOrCreate"}
    allowed = cache(scratch={"mode": "HostPath", "hostPath": {"path": "/mnt/nvme/dscache", "maxBytes": 10}})
    assert host_volume(inject(pod(), allowed)) == {"path": "/mnt/nvme/dscache", "type": "DirectoryOrCreate"}


def test_the_injected_init_container_gets_no_token_no_env_and_only_our_volumes() -> None:
    """Kubernetes mounts the pod's token into every container without a mount at its path, also into
    ours after the webhook: an empty read-only volume takes that path in the init container only."""
    p = pod("hostPath:/mnt/nvme/dscache")
    p["spec"]["serviceAccountName"] = "trainer"
    out = inject(p)
    setup, init = out["spec"]["initContainers"]  # hostPath scratch: the setup step, then prepare
    assert setup["name"] == "dscache-scratch-setup"
    assert [(m["name"], m["mountPath"]) for m in setup["volumeMounts"]] == [
        ("dscache-scratch", "/var/lib/dscache/scratch"),
        ("dscache-no-token", "/var/run/secrets/kubernetes.io/serviceaccount"),
    ]
    assert "env" not in setup and "envFrom" not in setup
    assert [(m["name"], m["mountPath"]) for m in init["volumeMounts"]] == [
        ("dscache-cache", "/var/lib/dscache/cache"),
        ("dscache-links", "/dscache"),
        ("dscache-scratch", "/var/lib/dscache/scratch"),
        ("dscache-no-token", "/var/run/secrets/kubernetes.io/serviceaccount"),
    ]
    assert init["volumeMounts"][-1]["readOnly"] is True
    volumes = {v["name"]: v for v in out["spec"]["volumes"]}
    # room for an empty directory as the kubelet's du counts it (4 KiB): 1Ki got pods evicted
    assert volumes["dscache-no-token"] == {"name": "dscache-no-token", "emptyDir": {"sizeLimit": "1Mi"}}
    assert "env" not in init and "envFrom" not in init
    [main] = out["spec"]["containers"]
    assert "dscache-no-token" not in [m["name"] for m in main["volumeMounts"]]  # the workload's choice
