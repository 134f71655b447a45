"""Trust boundaries on the test bed, tried as a DatasetCache author or a pod author would: the real API
server with the CRD's rules and the operator's webhooks refuses each attempt with what is not allowed
and why, and nothing is written (docs/threat-model.md)."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dscache_testbed.fixtures import Testbed
from dscache_testbed.kube import ApiError

from dscache.api.names import VersionKey
from tests.cluster import operator_fixtures as opf
from tests.factories import version_items
from tests.servers.s3 import S3Env

pytestmark = pytest.mark.cluster
crds = opf.crds
start_operator = opf.start_operator

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def host_dir(testbed: Testbed, namespace: str, name: str) -> str:
    """A real host directory of this test, under the bed's directory (removed with the bed)."""
    return f"{testbed.root}/hostpath/{namespace}/{name}"


def allowed_dir(testbed: Testbed, namespace: str) -> str:
    """The one host directory the admin allows for scratch in these tests."""
    return host_dir(testbed, namespace, "scratch")


def _pods(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def labelled_pod(name: str, cache: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"dscache.io/cache": cache}, "annotations": annotations or {}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "true"]}],
        },
    }


def pod_refusal(testbed: Testbed, namespace: str, pod: dict[str, Any], dry_run: bool = False) -> str:
    """The API server's refusal to create `pod` (it must refuse)."""
    params = {"dryRun": "All"} if dry_run else {}
    try:
        testbed.kube.request("POST", _pods(namespace), pod, params=params)
    except ApiError as err:
        return str(err)
    raise AssertionError(f"pod {pod['metadata']['name']} was admitted")


def cache_refusal(testbed: Testbed, namespace: str, name: str, spec: dict[str, Any]) -> str:
    """kubectl's error when applying the DatasetCache (it must be refused)."""
    proc = testbed.kubectl(
        "apply", "-n", namespace, "-f", "-", input=opf.datasetcache(name, spec), check=False
    )
    assert proc.returncode != 0, f"DatasetCache {name} was accepted"
    return str(proc.stderr)


def names_of(testbed: Testbed, path: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in testbed.kube.get(path)["items"])


def assert_nothing_written(testbed: Testbed, namespace: str, caches: list[str] | None = None) -> None:
    """Only what the namespace had and the `caches` the test made: no Job, ConfigMap, claim, account,
    role or pod of dscache."""
    ns = f"/api/v1/namespaces/{namespace}"
    assert names_of(testbed, f"{opf.DSC}/namespaces/{namespace}/datasetcaches") == sorted(caches or [])
    assert names_of(testbed, f"/apis/batch/v1/namespaces/{namespace}/jobs") == []
    assert names_of(testbed, f"{ns}/configmaps") == ["kube-root-ca.crt"]
    assert names_of(testbed, f"{ns}/serviceaccounts") == ["default"]
    assert names_of(testbed, f"{ns}/persistentvolumeclaims") == []
    assert names_of(testbed, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles") == []
    assert names_of(testbed, f"{ns}/pods") == []


@pytest.fixture
def guarded(testbed: Testbed, namespace: str, start_operator: opf.OperatorFactory) -> Iterator[opf.Operator]:
    """The operator with its webhooks (dev mode), allowing one host directory for scratch."""

    def in_force() -> bool:
        with contextlib.suppress(AssertionError):
            probe = labelled_pod("probe", "missing")
            return "does not exist" in pod_refusal(testbed, namespace, probe, dry_run=True)
        return False

    with opf.dev_webhook_operator(
        testbed,
        namespace,
        start_operator,
        "--prepare-wait",
        "60",
        "--scratch-host-path",
        allowed_dir(testbed, namespace),
        wait=lambda: testbed.wait_for("webhook in force", in_force, timeout=60),
    ) as op:
        yield op
    shutil.rmtree(Path(host_dir(testbed, namespace, "")), ignore_errors=True)


def spec(**extra: Any) -> dict[str, Any]:
    """A valid spec (a claim that does not exist: the operator never gets as far as an installer)."""
    base = {
        "source": {"s3": {"bucket": "b"}},
        "versions": version_items("objects/thor=v1"),
        "volume": {"claimName": "no-such-claim"},
    }
    return {**base, **extra}


def test_a_file_source_aimed_at_the_installers_token_is_refused(
    testbed: Testbed, namespace: str, guarded: opf.Operator
) -> None:
    attack = spec(source={"file": {"path": TOKEN_DIR}}, volume={"create": {"size": "1Gi"}})
    message = cache_refusal(testbed, namespace, "steal", attack)
    assert "spec.source: Invalid value" in message
    assert "file is for laptops and CI" in message
    assert "in a cluster the installer Job would copy whatever its own container can read" in message
    assert_nothing_written(testbed, namespace)


@pytest.mark.parametrize("variable", ["LD_PRELOAD", "PATH"])
def test_ld_preload_and_path_are_refused_as_env_names(
    testbed: Testbed, namespace: str, guarded: opf.Operator, variable: str
) -> None:
    versions = version_items("objects/thor=v1", envName={"objects/thor": variable})
    message = cache_refusal(testbed, namespace, "hijack", spec(versions=versions))
    assert "spec.versions[0].envName" in message
    assert "this variable would let the cache's source decide which code, programs or certificate" in message
    assert_nothing_written(testbed, namespace)


def test_mount_path_usr_is_refused(testbed: Testbed, namespace: str, guarded: opf.Operator) -> None:
    message = cache_refusal(testbed, namespace, "shadow", spec(mountPath="/usr"))
    assert "spec.mountPath" in message
    assert "mountPath may not be, lie under or contain a system directory" in message
    assert "the cache's links would replace what programs load from there" in message
    assert_nothing_written(testbed, namespace)


def _plant_escape(testbed: Testbed, namespace: str) -> Path:
    """What a pod that uses the allowed scratch can do on the node: a symlink out of it. Returns the
    directory it points at."""
    allowed = Path(allowed_dir(testbed, namespace))
    outside = Path(host_dir(testbed, namespace, "outside"))
    allowed.mkdir(parents=True)
    outside.mkdir(parents=True)
    (allowed / "escape").symlink_to(outside)
    return outside


def test_a_caches_host_scratch_outside_the_admins_directory_is_refused(
    testbed: Testbed, namespace: str, guarded: opf.Operator
) -> None:
    outside = _plant_escape(testbed, namespace)
    allowed = allowed_dir(testbed, namespace)
    attacks = {
        "etc": ("/etc", "/etc is not a host directory this cluster allows for scratch"),
        "dotdot": (f"{allowed}/../outside", "has a '..' segment"),
        "symlink": (f"{allowed}/escape", "only the listed directories themselves are, not paths below"),
    }
    for name, (path, reason) in attacks.items():
        scratch = {"mode": "HostPath", "hostPath": {"path": path}}
        message = cache_refusal(testbed, namespace, name, spec(scratch=scratch))
        assert "denied the request: spec.scratch.hostPath.path: " in message, message
        assert reason in message, (name, message)
    assert_nothing_written(testbed, namespace)
    assert list(outside.iterdir()) == []


def test_a_pods_host_scratch_outside_the_admins_directory_is_refused(
    testbed: Testbed, namespace: str, guarded: opf.Operator
) -> None:
    outside = _plant_escape(testbed, namespace)
    allowed = allowed_dir(testbed, namespace)
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=opf.datasetcache("objs", spec()))
    attacks = {
        "etc": ("/etc", "/etc is not a host directory this cluster allows for scratch"),
        "dotdot": (f"{allowed}/../outside", "has a '..' segment"),
        "symlink": (f"{allowed}/escape", "only the listed directories themselves are, not paths below"),
    }
    for name, (path, reason) in attacks.items():
        annotation = f"hostPath:{path}"
        message = pod_refusal(
            testbed, namespace, labelled_pod(name, "objs", {"dscache.io/scratch": annotation})
        )
        assert f"annotation dscache.io/scratch={annotation!r}: " in message, message
        assert reason in message, (name, message)
    assert_nothing_written(testbed, namespace, caches=["objs"])
    assert list(outside.iterdir()) == []
    # The directory the admin allows is what a pod gets, and nothing else.
    pod = labelled_pod("fine", "objs", {"dscache.io/scratch": f"hostPath:{allowed}"})
    admitted = testbed.kube.request("POST", _pods(namespace), pod, params={"dryRun": "All"})
    [scratch] = [v for v in admitted["spec"]["volumes"] if v["name"] == "dscache-scratch"]
    assert scratch["hostPath"] == {"path": allowed, "type": "DirectoryOrCreate"}


def test_only_the_install_container_holds_a_token_and_it_reports_status(
    testbed: Testbed, namespace: str, s3: S3Env, tmp_path: Path, guarded: opf.Operator
) -> None:
    key = VersionKey("objects", "thor", "v1")
    opf.Remote(s3, "data").publish(tmp_path, key, {"a.bin": 20_000})
    opf.create_secret(testbed, namespace, "testing", "testing-secret")
    good = {"source": opf.s3_source(s3, "data"), "versions": version_items("objects/thor=v1")}
    testbed.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=opf.datasetcache("objs", {**good, "volume": {"create": {"size": "1Gi"}}}),
    )
    ready = opf.wait_phase(testbed, namespace, "objs", "Ready")
    # Written by the installer itself with its projected token: the API server accepted it.
    installed = ready["status"]["installed"]
    assert [(v["dataType"], v["source"], v["version"]) for v in installed] == [("objects", "thor", "v1")]
    assert ready["status"]["progress"]["percent"] == "100%"
    job = ready["status"]["installJob"]
    [pod] = testbed.kube.get(_pods(namespace), labelSelector=f"job-name={job}")["items"]
    spec_ = pod["spec"]
    assert spec_["automountServiceAccountToken"] is False
    assert not [v for v in spec_["volumes"] if v["name"].startswith("kube-api-access")], spec_["volumes"]
    [install], [gc] = spec_["initContainers"], spec_["containers"]
    secrets = {
        c["name"]: [m["mountPath"] for m in c["volumeMounts"] if "/secrets" in m["mountPath"]]
        for c in (install, gc)
    }
    assert secrets == {"install": ["/var/run/secrets/dscache.io/serviceaccount"], "gc": []}
    # A workload pod: the API server mounts its ServiceAccount's token into every container without a
    # mount at its path, webhook-injected ones too; dscache's init container holds an empty volume there.
    workload = testbed.kube.request(
        "POST", _pods(namespace), labelled_pod("train", "objs"), params={"dryRun": "All"}
    )
    at_token_path = {
        c["name"]: [m["name"] for m in c.get("volumeMounts") or [] if m["mountPath"] == TOKEN_DIR]
        for c in [*workload["spec"]["initContainers"], *workload["spec"]["containers"]]
    }
    [token_volume] = at_token_path["main"]
    assert token_volume.startswith("kube-api-access-"), json.dumps(workload["spec"], indent=1)
    assert at_token_path["dscache-prepare"] == ["dscache-no-token"]
    volumes = {v["name"]: v for v in workload["spec"]["volumes"]}
    assert set(volumes["dscache-no-token"]) == {"name", "emptyDir"}
