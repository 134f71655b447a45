"""The webhook is never the reason a pod cannot start: the chart's two operator replicas on the test
bed, one deleted during a burst of labelled pod creations, and not one admission fails.

The chart is rendered with `operator.replicas=2` (its default) and applied. The bed has one node and
puts every pod on the host network (hack/README.md), so two pods of one Deployment would need the same
host ports: the one Deployment becomes two of one replica each, identical but for their ports (the
second listens on other ones). Both pods carry the chart's labels, so the chart's webhook Service,
PodDisruptionBudget and metrics Service select both, and both run with the chart's peering name.
The bed's service proxy sends each new connection to a Ready pod; a pod being deleted is no longer
one, while connections it already has stay open until it closes them (as kube-proxy's do).
Bed-only plumbing: the operators reach the API server at 127.0.0.1 (several beds on one machine share
the loopback service range), and may list namespaces (kopf otherwise retries that for a minute).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from dscache_testbed.fixtures import Testbed
from dscache_testbed.kube import ApiError

from dscache.api.names import VersionKey
from tests.charts.chart import render_text
from tests.cluster import operator_fixtures as opf
from tests.servers.s3 import S3Env

pytestmark = pytest.mark.cluster
crds = opf.crds

PODS = 50
CONCURRENCY = 10  # pods created at once, in waves
# Between waves: the 2nd comes with the deletion, the 3rd while the deleted pod drains (preStop 10 s),
# the 4th and 5th after it is gone.
WAVE_SECONDS = 8.0
CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"}
CLUSTER_KINDS |= {"ValidatingWebhookConfiguration"}
PORTS = ("health", "metrics", "webhook")
PAUSED = "Pausing operations in favour of"  # kopf's log line when a newer peer takes over
FLAGS = {"health": "--liveness=", "metrics": "--metrics-port=", "webhook": "--webhook-port="}


def _with_ports(deployment: dict[str, Any], name: str, ports: dict[str, int]) -> dict[str, Any]:
    """The Deployment as `name` with one replica listening on `ports` (port name -> number)."""
    out = json.loads(json.dumps(deployment))
    out["metadata"]["name"] = name
    out["spec"]["replicas"] = 1
    [container] = out["spec"]["template"]["spec"]["containers"]
    for port in container["ports"]:
        port["containerPort"] = ports[port["name"]]
    container["args"] = [_port_arg(arg, ports) for arg in container["args"]]
    return out


def _port_arg(arg: str, ports: dict[str, int]) -> str:
    """`arg` with its port replaced, if it is one of FLAGS."""
    for port, flag in FLAGS.items():
        if arg.startswith(flag):
            return re.sub(r"\d+(?=/healthz$|$)", str(ports[port]), arg)
    return arg


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def _mutations(port: int) -> float:
    """Pod admissions a replica answered (its dscache_admission_seconds count for mutate-pods)."""
    found = re.search(
        r'^dscache_admission_seconds_count\{webhook="mutate-pods"\} (\S+)$', _metrics(port), re.M
    )
    return float(found.group(1)) if found else 0.0


def _pod(name: str, cache: str) -> dict[str, Any]:
    """A labelled pod held by a scheduling gate: admitted (and mutated), never run."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"dscache.io/cache": cache}},
        "spec": {
            "schedulingGates": [{"name": "dscache.io/test-hold"}],
            "containers": [{"name": "train", "image": "busybox:1.36", "command": ["true"]}],
        },
    }


@pytest.fixture
def release(
    testbed: Testbed, crds: None, namespace: str, tmp_path: Path
) -> Iterator[tuple[str, str, dict[str, dict[str, int]]]]:
    """The chart (2 replicas) applied in `namespace`, admitting pods in a second, labelled namespace;
    (release, workloads namespace, ports of each replica's Deployment)."""
    name = f"dscache-{uuid.uuid4().hex[:6]}"
    workloads = f"{namespace}-w"
    testbed.kube.post("/api/v1/namespaces", {"metadata": {"name": workloads, "labels": {name: "on"}}})
    ports = {d: {p: opf.free_port() for p in PORTS} for d in (name, f"{name}-b")}
    values = {
        "operator.watchNamespaces[0]": workloads,
        "operator.watchNamespaces[1]": namespace,
        "operator.healthPort": str(ports[name]["health"]),
        "metrics.port": str(ports[name]["metrics"]),
        "webhook.port": str(ports[name]["webhook"]),
        f"webhook.namespaceSelector.matchLabels.{name}": "on",
        "webhook.failurePolicy": "Fail",
        "crds.enabled": "false",  # the bed's CRDs are shared by every test (the `crds` fixture)
        "operator.installerApiUrl": opf.api_url(testbed),
    }
    # The API server at its own address: with several beds on one machine (their service ranges are
    # the same loopback range) the `kubernetes` Service's IP may be another bed's.
    env = [
        {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
        {"name": "KUBERNETES_SERVICE_PORT", "value": str(testbed.kube.port)},
    ]
    (tmp_path / "env.yaml").write_text(yaml.safe_dump({"operator": {"extraEnv": env}}))
    rendered = render_text(values, namespace, name, files=(tmp_path / "env.yaml",))
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    docs = [d for d in docs if "helm.sh/hook" not in (d["metadata"].get("annotations") or {})]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2  # the chart's default
    assert {d["kind"] for d in docs} >= {"PodDisruptionBudget", "Service"}
    docs.remove(deployment)
    docs += [_with_ports(deployment, d, p) for d, p in ports.items()]
    # kopf lists namespaces at start; refused (the chart grants no such read), it retries for about a
    # minute before it watches the listed ones. Granted here so the operators start at once.
    docs += _namespace_reader(name, namespace)
    cluster = [d for d in docs if d["kind"] in CLUSTER_KINDS]
    try:
        testbed.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))
        yield name, workloads, ports
    finally:
        for doc in cluster:
            testbed.kubectl("delete", doc["kind"], doc["metadata"]["name"], "--ignore-not-found", check=False)
        testbed.kubectl("delete", "namespace", workloads, "--wait=false", check=False)


def _namespace_reader(name: str, namespace: str) -> list[dict[str, Any]]:
    role = f"{name}-test-namespaces"
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]


def _ready_pods(testbed: Testbed, namespace: str) -> dict[str, dict[str, Any]]:
    """Ready operator pods by their Deployment's name."""
    pods = testbed.kube.get(
        f"/api/v1/namespaces/{namespace}/pods", labelSelector="app.kubernetes.io/component=operator"
    )["items"]
    ready = {}
    for pod in pods:
        conditions = pod.get("status", {}).get("conditions") or []
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            ready[pod["metadata"]["name"].rsplit("-", 2)[0]] = pod
    return ready


def test_deleting_a_replica_during_a_burst_of_pods_fails_no_admission(
    testbed: Testbed,
    namespace: str,
    release: tuple[str, str, dict[str, dict[str, int]]],
    s3: S3Env,
    tmp_path: Path,
) -> None:
    name, workloads, ports = release
    pods = testbed.wait_for("both replicas Ready", lambda: len(_ready_pods(testbed, namespace)) == 2, 180)
    pods = _ready_pods(testbed, namespace)
    assert set(pods) == set(ports), pods
    budget = testbed.wait_for(
        "the PodDisruptionBudget counts both",
        lambda: (
            (b := testbed.get(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}"))
            and b.get("status", {}).get("currentHealthy") == 2
            and b
        ),
    )
    assert budget["status"]["disruptionsAllowed"] == 1  # one replica may go, not both

    # Ready means admission can answer, not that kopf's peering has met the other replica: the older
    # one pauses only once the newer one's keep-alive reaches it. Reconciliation waits for that.
    def paused() -> list[str]:
        return [
            d for d, p in pods.items() if PAUSED in testbed.logs(namespace, p["metadata"]["name"], "operator")
        ]

    try:  # at a load average of 10-18 a replica's kopf may start minutes after its admission is Ready
        [idle] = testbed.wait_for("peering settled: the older replica pauses", paused, 240)
    except AssertionError as err:
        peerings = testbed.get(f"/apis/kopf.dev/v1/namespaces/{namespace}/kopfpeerings") or {}
        logs = {
            p["metadata"]["name"]: testbed.logs(namespace, p["metadata"]["name"], "operator")
            for p in pods.values()
        }
        seen = {  # kopf's lines, not the probes' access log that fills the tail
            "peerings": [o.get("status") for o in peerings.get("items", [])],
            "logs": {
                k: [line for line in v.splitlines() if "GET /healthz" not in line][-40:]
                for k, v in logs.items()
            },
        }
        raise AssertionError(f"{err}\n{json.dumps(seen, indent=1)}") from None

    # One reconciler: exactly one installer Job, started by one replica while the other waits.
    opf.Remote(s3, "data").publish(tmp_path, VersionKey("objects", "thor", "v1"), {"a.bin": 10_000})
    opf.create_secret(testbed, workloads, "testing", "testing-secret")
    spec = {
        "source": opf.s3_source(s3, "data"),
        "versions": [{"dataType": "objects", "source": "thor", "version": "v1"}],
        "volume": {"create": {"size": "1Gi"}},
    }
    testbed.kubectl("apply", "-n", workloads, "-f", "-", input=opf.datasetcache("objs", spec))
    try:
        opf.wait_phase(testbed, workloads, "objs", "Ready", timeout=180)
    except AssertionError as err:
        logs = {
            p["metadata"]["name"]: testbed.logs(namespace, p["metadata"]["name"], "operator")
            for p in pods.values()
        }
        raise AssertionError(
            f"{err}\n{json.dumps({k: v[-5000:] for k, v in logs.items()}, indent=1)}"
        ) from None
    assert len(opf.installer_jobs(testbed, workloads, "objs")) == 1
    logs = {d: testbed.logs(namespace, p["metadata"]["name"], "operator") for d, p in pods.items()}
    started = [
        d for d, log in logs.items() if f"for {workloads}/objs" in log and "started objs-install" in log
    ]
    assert started == list(set(logs) - {idle}), logs  # the newer replica, and only it
    assert PAUSED in logs[idle]

    # Which replica the bed's proxy sends admissions to: the one to delete.
    before = {d: _mutations(ports[d]["metrics"]) for d in ports}
    testbed.kubectl(
        "create", "-n", workloads, "--dry-run=server", "-f", "-", input=json.dumps(_pod("probe", "objs"))
    )
    serving = [d for d in ports if _mutations(ports[d]["metrics"]) > before[d]]
    assert len(serving) == 1, serving
    [survivor] = set(ports) - set(serving)
    survivor_before = _mutations(ports[survivor]["metrics"])
    victim = pods[serving[0]]["metadata"]["name"]

    failures: list[str] = []
    created: list[str] = []
    lock = threading.Lock()
    start = time.monotonic()

    def create(i: int) -> None:
        time.sleep(max(0.0, start + (i // CONCURRENCY) * WAVE_SECONDS - time.monotonic()))
        pod = _pod(f"train-{i:02d}", "objs")
        try:
            testbed.kube.post(f"/api/v1/namespaces/{workloads}/pods", pod)
        except ApiError as err:
            with lock:
                failures.append(f"train-{i:02d}: {err}")
        else:
            with lock:
                created.append(pod["metadata"]["name"])

    gone_at: list[float] = []

    def watch_victim() -> None:
        while testbed.get(f"/api/v1/namespaces/{namespace}/pods/{victim}") is not None:
            time.sleep(0.2)
        gone_at.append(time.monotonic() - start)

    watcher = threading.Thread(target=watch_victim, daemon=True)
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        futures = [pool.submit(create, i) for i in range(PODS)]
        time.sleep(max(0.0, start + WAVE_SECONDS - time.monotonic()))
        testbed.kube.delete(f"/api/v1/namespaces/{namespace}/pods/{victim}")
        deleted_at = time.monotonic() - start
        watcher.start()
        for future in futures:
            future.result()
        elapsed = time.monotonic() - start
    watcher.join(60)
    print(f"{PODS} pods in {elapsed:.1f}s; replica deleted at {deleted_at:.1f}s, gone at {gone_at[0]:.1f}s")
    assert gone_at[0] < elapsed  # pods were created before, while and after it stopped

    assert failures == [], failures
    assert len(created) == PODS
    listed = testbed.kube.get(f"/api/v1/namespaces/{workloads}/pods", labelSelector="!dscache.io/component")
    assert sorted(p["metadata"]["name"] for p in listed["items"]) == sorted(created)
    for pod in listed["items"]:
        inits = [c["name"] for c in pod["spec"].get("initContainers") or []]
        assert inits == ["dscache-prepare"], (pod["metadata"]["name"], inits)
    assert _mutations(ports[survivor]["metrics"]) > survivor_before  # it took over
