"""Pod injection end to end on the test bed: the real API server calls the operator's webhook over
HTTPS, the kubelet runs the injected `dscache prepare` init container, then the workload."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dscache_testbed import pki
from dscache_testbed.fixtures import Testbed
from dscache_testbed.kube import ApiError

from dscache.api.names import VersionKey
from tests.cluster import operator_fixtures as opf
from tests.servers.s3 import S3Env

pytestmark = pytest.mark.cluster
crds = opf.crds
start_operator = opf.start_operator

V1 = VersionKey("objects", "thor", "v1")
V2 = VersionKey("objects", "thor", "v2")
FILES: dict[str, int | str] = {"a.bin": 50_000, "dir/b.txt": "hello"}
HOOKS = opf.HOOKS
# The workload: the data is at the stable path, through the env the webhook set.
CHECK = 'test "$DSCACHE_ROOT" = /dscache && test "$(cat "$DSCACHE_OBJECTS_THOR/dir/b.txt")" = hello'


def _pods(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def labelled_pod(
    name: str, script: str, cache: str = "objs", annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"dscache.io/cache": cache}, "annotations": annotations or {}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}],
        },
    }


def dry_run(testbed: Testbed, namespace: str, pod: dict[str, Any]) -> dict[str, Any]:
    """The pod as the API server would store it, after mutation (nothing is created)."""
    return dict(testbed.kube.request("POST", _pods(namespace), pod, params={"dryRun": "All"}))


def denial(testbed: Testbed, namespace: str, pod: dict[str, Any]) -> str:
    """The API server's refusal of `pod` (a server-side dry run: nothing is created)."""
    try:
        dry_run(testbed, namespace, pod)
    except ApiError as err:
        return str(err)
    raise AssertionError("the pod was admitted")


def wait_webhook(testbed: Testbed, namespace: str) -> None:
    """Webhook configurations apply asynchronously: wait until ours denies a pod of a missing cache."""

    def in_force() -> bool:
        with contextlib.suppress(AssertionError):
            return "does not exist" in denial(testbed, namespace, labelled_pod("probe", "true", "missing"))
        return False

    testbed.wait_for("webhook in force", in_force, timeout=60)


@pytest.fixture
def webhook_operator(
    testbed: Testbed, namespace: str, start_operator: opf.OperatorFactory
) -> Iterator[opf.Operator]:
    """The operator in dev mode (`opf.dev_webhook_operator`), allowing the hostPath scratch tests' dirs."""
    with opf.dev_webhook_operator(
        testbed,
        namespace,
        start_operator,
        "--prepare-wait",
        "120",
        # the host directories the hostPath scratch tests use, as an admin would allow them
        "--scratch-host-path",
        _host_path(testbed, namespace, "scratch"),
        "--scratch-host-path",
        _host_path(testbed, namespace, "nvme"),
        wait=lambda: wait_webhook(testbed, namespace),
    ) as op:
        yield op


def spec(s3: S3Env, versions: dict[str, dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {
        "source": opf.s3_source(s3, "data"),
        "versions": [
            {"dataType": dt, "source": src, "version": ver}
            for dt, by in versions.items()
            for src, ver in by.items()
        ],
        "volume": {"create": {"size": "1Gi"}},
        **extra,
    }


def publish(testbed: Testbed, namespace: str, s3: S3Env, tmp_path: Path, *keys: VersionKey) -> None:
    remote = opf.Remote(s3, "data")
    for key in keys:
        remote.publish(tmp_path / str(key).replace("/", "_"), key, FILES)
    opf.create_secret(testbed, namespace, "testing", "testing-secret")


def apply_cache(testbed: Testbed, namespace: str, name: str, body: dict[str, Any]) -> None:
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=opf.datasetcache(name, body))


def ready_cache(
    testbed: Testbed, namespace: str, s3: S3Env, tmp_path: Path, name: str = "objs", **extra: Any
) -> dict[str, Any]:
    publish(testbed, namespace, s3, tmp_path, V1)
    apply_cache(testbed, namespace, name, spec(s3, {"objects": {"thor": "v1"}}, **extra))
    return opf.wait_phase(testbed, namespace, name, "Ready")


def logs(testbed: Testbed, namespace: str, pod: str) -> str:
    return testbed.logs(namespace, pod)


def wait_pod(
    testbed: Testbed, namespace: str, name: str, phase: str = "Succeeded", timeout: float = 90
) -> None:
    def reached() -> bool:
        got = (testbed.get(f"{_pods(namespace)}/{name}") or {}).get("status", {}).get("phase")
        assert got != "Failed" or phase == "Failed", logs(testbed, namespace, name)
        return bool(got == phase)

    try:
        testbed.wait_for(f"pod {name} {phase}", reached, timeout=timeout)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{logs(testbed, namespace, name)}") from None


def test_labelled_pod_finds_the_data_at_the_mount_path(
    testbed: Testbed, namespace: str, s3: S3Env, tmp_path: Path, webhook_operator: opf.Operator
) -> None:
    ready_cache(testbed, namespace, s3, tmp_path)
    testbed.kube.post(_pods(namespace), labelled_pod("train", CHECK + " && ls -l /dscache/objects/"))
    wait_pod(testbed, namespace, "train")
    stored = testbed.kube.get(f"{_pods(namespace)}/train")
    assert stored["metadata"]["annotations"]["dscache.io/resolved-versions"] == "objects/thor=v1"
    [init] = stored["spec"]["initContainers"]
    assert init["name"] == "dscache-prepare" and init["args"][:1] == ["prepare"]
    assert "--ref" in init["args"] and f"{namespace}.objs" in init["args"]
    statuses = stored["status"]["initContainerStatuses"]
    assert statuses[0]["state"]["terminated"]["exitCode"] == 0
    # The link is a relative symlink into the read-only cache volume, mounted in the workload too.
    assert "objects/thor/v1" in testbed.logs(namespace, "train", "main")


def test_unknown_cache_and_unavailable_pin_are_denied_with_what_to_fix(
    testbed: Testbed, namespace: str, s3: S3Env, tmp_path: Path, webhook_operator: opf.Operator
) -> None:
    message = denial(testbed, namespace, labelled_pod("p", "true", cache="nope"))
    assert "DatasetCache nope does not exist" in message and f"namespace {namespace}" in message
    ready_cache(testbed, namespace, s3, tmp_path)
    pinned = labelled_pod("p", "true", annotations={"dscache.io/versions": "objects/thor=v9"})
    message = denial(testbed, namespace, pinned)
    assert "pins objects/thor=v9" in message and "objects/thor=v1" in message, message
    # A pin on an installed version is admitted (dry run: the API server returns the mutated pod).
    pinned["metadata"]["annotations"]["dscache.io/versions"] = "objects/thor=v1"
    got = dry_run(testbed, namespace, pinned)
    assert "--version" in got["spec"]["initContainers"][0]["args"]
    assert testbed.get(f"{_pods(namespace)}/p") is None


def _blocker_job(claim: str) -> dict[str, Any]:
    """A writer Job on the claim, as another DatasetCache's installer would be: ours queues behind it."""
    labels = {"dscache.io/component": "installer", "dscache.io/cache": "other", "dscache.io/claim": claim}
    return {
        "metadata": {"name": "blocker", "labels": labels, "annotations": {"dscache.io/claim": claim}},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "600"]}],
                }
            }
        },
    }


def test_pod_created_before_the_cache_is_ready_waits_then_starts(
    testbed: Testbed, namespace: str, s3: S3Env, tmp_path: Path, webhook_operator: opf.Operator
) -> None:
    publish(testbed, namespace, s3, tmp_path, V1)
    testbed.kube.post(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        {
            "metadata": {"name": "shared"},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    testbed.kube.post(jobs, _blocker_job("shared"))
    body = spec(s3, {"objects": {"thor": "v1"}}, volume={"claimName": "shared"})
    apply_cache(testbed, namespace, "objs", body)
    opf.wait_phase(testbed, namespace, "objs", "Queued")
    testbed.kube.post(_pods(namespace), labelled_pod("early", CHECK))

    def init_running() -> bool:
        pod = testbed.get(f"{_pods(namespace)}/early") or {}
        states = [s.get("state", {}) for s in pod.get("status", {}).get("initContainerStatuses") or []]
        return bool(states and "running" in states[0])

    testbed.wait_for("init container waiting for the cache", init_running, timeout=60)
    status = (opf.get_dsc(testbed, namespace, "objs") or {}).get("status", {})
    assert status.get("phase") == "Queued", status
    testbed.kube.delete(f"{jobs}/blocker", {"propagationPolicy": "Background"})
    opf.wait_phase(testbed, namespace, "objs", "Ready")
    wait_pod(testbed, namespace, "early")


def _host_path(testbed: Testbed, namespace: str, name: str) -> str:
    """A hostPath under the bed's directory (removed with the bed) for this test."""
    return f"{testbed.root}/hostpath/{namespace}/{name}"


def test_scratch_emptydir_and_hostpath_from_pod_annotations(
    testbed: Testbed, namespace: str, s3: S3Env, tmp_path: Path, webhook_operator: opf.Operator
) -> None:
    ready_cache(testbed, namespace, s3, tmp_path)
    host = _host_path(testbed, namespace, "scratch")
    on_scratch = CHECK + ' && readlink -f "$DSCACHE_OBJECTS_THOR"'
    for name, scratch in (("empty", "emptyDir:1Gi"), ("host", f"hostPath:{host}"), ("shared", "none")):
        pod = labelled_pod(name, on_scratch, annotations={"dscache.io/scratch": scratch})
        testbed.kube.post(_pods(namespace), pod)
    for name in ("empty", "host", "shared"):
        wait_pod(testbed, namespace, name)
    target = {
        name: testbed.logs(namespace, name, "main").strip().splitlines()[-1]
        for name in ("empty", "host", "shared")
    }
    assert target == {
        "empty": "/var/lib/dscache/scratch/objects/thor/v1",
        "host": "/var/lib/dscache/scratch/objects/thor/v1",
        "shared": "/var/lib/dscache/cache/objects/thor/v1",
    }
    vols = {v["name"]: v for v in testbed.kube.get(f"{_pods(namespace)}/empty")["spec"]["volumes"]}
    assert vols["dscache-scratch"]["emptyDir"] == {"sizeLimit": "1Gi"}
    copy = Path(host) / "objects/thor/v1"
    assert (copy / "dir/b.txt").read_text() == "hello"


def test_job_of_four_pods_on_one_node_shares_one_hostpath_copy(
    testbed: Testbed, namespace: str, s3: S3Env, tmp_path: Path, webhook_operator: opf.Operator
) -> None:
    host = _host_path(testbed, namespace, "nvme")
    ready_cache(testbed, namespace, s3, tmp_path, scratch={"mode": "HostPath", "hostPath": {"path": host}})
    script = CHECK + ' && readlink -f "$DSCACHE_OBJECTS_THOR"'
    template = labelled_pod("unused", script)
    del template["metadata"]["name"]
    job = {
        "metadata": {"name": "train"},
        "spec": {"parallelism": 4, "completions": 4, "backoffLimit": 0, "template": template},
    }
    testbed.kube.post(f"/apis/batch/v1/namespaces/{namespace}/jobs", job)

    def complete() -> bool:
        got = testbed.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/train") or {}
        conds = {c["type"]: c["status"] for c in got.get("status", {}).get("conditions") or []}
        assert conds.get("Failed") != "True", got.get("status")
        return conds.get("Complete") == "True"

    testbed.wait_for("Job train complete", complete, timeout=120)
    pods = testbed.kube.get(_pods(namespace), labelSelector="job-name=train")["items"]
    assert len(pods) == 4
    for pod in pods:
        out = testbed.logs(namespace, pod["metadata"]["name"], "main")
        assert out.strip().splitlines()[-1] == "/var/lib/dscache/scratch/objects/thor/v1", out
    scratch = Path(host)
    assert sorted(p.name for p in (scratch / "objects/thor").iterdir()) == ["v1"]
    assert list((scratch / ".dscache/staging").glob("*")) == [], "a copy in progress was left behind"


def test_hostpath_copy_by_one_uid_is_used_by_a_pod_of_another_uid(
    testbed: Testbed, namespace: str, s3: S3Env, tmp_path: Path, webhook_operator: opf.Operator
) -> None:
    """Non-root init containers of two users share one node's hostPath scratch, which the kubelet
    creates root-owned: the first pod copies the version, the second links to that copy."""
    host = _host_path(testbed, namespace, "nvme")
    ready_cache(testbed, namespace, s3, tmp_path, scratch={"mode": "HostPath", "hostPath": {"path": host}})
    script = CHECK + ' && id -u && readlink -f "$DSCACHE_OBJECTS_THOR"'
    for name, uid in (("first", 1001), ("second", 2002)):
        pod = labelled_pod(name, script)
        pod["spec"]["securityContext"] = {"runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": True}
        testbed.kube.post(_pods(namespace), pod)
        wait_pod(testbed, namespace, name)
        main = testbed.logs(namespace, name, "main").split()
        assert main[-2:] == [str(uid), "/var/lib/dscache/scratch/objects/thor/v1"], logs(
            testbed, namespace, name
        )
    first, second = (testbed.logs(namespace, n, "dscache-prepare") for n in ("first", "second"))
    assert "copied to scratch" in first and "warning" not in first, first
    assert "copied" not in second and "warning" not in second, second  # used, not copied again
    copy = Path(host) / "objects/thor/v1"
    assert copy.stat().st_uid == 1001 and (copy / "dir/b.txt").read_text() == "hello"
    assert Path(host).stat().st_mode & 0o7777 == 0o1777  # opened by the scratch-setup container


def test_versions_in_use_are_protected_from_gc(
    testbed: Testbed, namespace: str, s3: S3Env, tmp_path: Path, webhook_operator: opf.Operator
) -> None:
    publish(testbed, namespace, s3, tmp_path, V1, V2)
    retention = {"keep": 0}
    apply_cache(testbed, namespace, "objs", spec(s3, {"objects": {"thor": "v1"}}, retention=retention))
    first = opf.wait_phase(testbed, namespace, "objs", "Ready")
    testbed.kube.post(_pods(namespace), labelled_pod("trainer", CHECK + " && sleep 600"))
    wait_pod(testbed, namespace, "trainer", phase="Running")
    pod = testbed.kube.get(f"{_pods(namespace)}/trainer")
    assert pod["metadata"]["annotations"]["dscache.io/resolved-versions"] == "objects/thor=v1"
    apply_cache(testbed, namespace, "objs", spec(s3, {"objects": {"thor": "v2"}}, retention=retention))
    opf.wait_phase(testbed, namespace, "objs", "Ready", generation=2)
    root = opf.claim_dir(testbed, namespace, first["status"]["claimName"])
    assert (root / "objects/thor/v2").is_dir()
    assert (root / "objects/thor/v1/dir/b.txt").read_text() == "hello", "gc removed a version in use"
    [job] = opf.installer_jobs(testbed, namespace, "objs")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == ["--in-use", "objects/thor=v1"]


def test_certificate_mode_with_configurations_registered_like_the_chart(
    testbed: Testbed, namespace: str, s3: S3Env, tmp_path: Path, start_operator: opf.OperatorFactory
) -> None:
    """Serving a mounted certificate at /mutate-pods and /validate-datasetcaches; the configurations
    are not the operator's (the Helm chart registers them, by Service; here by URL)."""
    ca = pki.make_ca(tmp_path, "hook-ca")
    tls = pki.issue(ca, tmp_path, "tls", "dscache-webhook", server=True, ips=("127.0.0.1",))
    port = opf.free_port()
    start_operator(
        "--webhook-cert", str(tls.cert), "--webhook-key", str(tls.key), "--webhook-port", str(port),
        "--webhook-addr", "127.0.0.1",
    )  # fmt: skip
    client = {"caBundle": base64.b64encode(ca.cert.read_bytes()).decode()}
    common = {
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
    }
    name = f"chart-{namespace}.dscache.io"
    mutating = {
        "metadata": {"name": name},
        "webhooks": [
            {
                **common,
                "name": "pods.dscache.io",
                "clientConfig": {**client, "url": f"https://127.0.0.1:{port}/mutate-pods"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ],
                "objectSelector": {
                    "matchExpressions": [
                        {"key": "dscache.io/cache", "operator": "Exists"},
                        {"key": "dscache.io/component", "operator": "DoesNotExist"},
                    ]
                },
            }
        ],
    }
    validating = {
        "metadata": {"name": name},
        "webhooks": [
            {
                **common,
                "name": "datasetcaches.dscache.io",
                "clientConfig": {**client, "url": f"https://127.0.0.1:{port}/validate-datasetcaches"},
                "rules": [
                    {
                        "apiGroups": ["dscache.io"],
                        "apiVersions": ["v1alpha1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["datasetcaches"],
                    }
                ],
            }
        ],
    }
    testbed.kube.post(f"{HOOKS}/mutatingwebhookconfigurations", mutating)
    testbed.kube.post(f"{HOOKS}/validatingwebhookconfigurations", validating)
    try:
        wait_webhook(testbed, namespace)
        shared = {"volume": {"claimName": "shared"}}
        apply_cache(testbed, namespace, "objs", spec(s3, {"objects": {"thor": "v1"}}, **shared))
        clash = spec(s3, {"objects": {"thor": "v2"}}, **shared)
        clash["source"]["s3"]["prefix"] = "elsewhere"
        result = testbed.kubectl(
            "apply", "-n", namespace, "-f", "-", input=opf.datasetcache("other", clash), check=False
        )
        assert result.returncode != 0
        assert "claim shared already holds objects/thor" in result.stderr, result.stderr
        assert "DatasetCache objs" in result.stderr
        # The same source on the same claim is fine (another version of the same data).
        apply_cache(testbed, namespace, "other", spec(s3, {"objects": {"thor": "v2"}}, **shared))
        got = testbed.kube.request(
            "POST", _pods(namespace), labelled_pod("p", "true"), params={"dryRun": "All"}
        )
        assert got["spec"]["initContainers"][0]["name"] == "dscache-prepare"
        assert json.dumps(got).count("dscache-links") == 3  # the volume, the init and main mounts
    finally:
        for kind in ("mutating", "validating"):
            testbed.kube.delete(f"{HOOKS}/{kind}webhookconfigurations/{name}")
