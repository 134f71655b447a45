"""Tests that prove the local test bed is a real Kubernetes control plane with a working node.

Each one exercises behaviour only a real API server and controller manager provide: structural
schema validation, the Job controller, the garbage collector, admission (webhook and CEL policy),
ServiceAccount tokens with RBAC, PVC binding by a real provisioner, and the kubelet's pod semantics.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from dscache_testbed import images, pki
from dscache_testbed.fixtures import Testbed
from dscache_testbed.kube import ApiError

pytestmark = pytest.mark.cluster


VALIDATING_HOOKS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


def configmap_create_hook(name: str, namespace: str, client_config: dict[str, Any]) -> dict[str, Any]:
    """A ValidatingWebhookConfiguration calling `client_config` for ConfigMap creations in `namespace`."""
    return {
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": name,
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "clientConfig": client_config,
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["configmaps"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            }
        ],
    }


def _job(name: str, script: str, *, backoff: int = 0, **pod_extra: Any) -> str:
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", script]}],
    }
    pod_spec.update(pod_extra)
    return json.dumps(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {"backoffLimit": backoff, "template": {"spec": pod_spec}},
        }
    )


def _job_condition(tb: Testbed, ns: str, name: str) -> str | None:
    job = tb.get(f"/apis/batch/v1/namespaces/{ns}/jobs/{name}") or {}
    for c in job.get("status", {}).get("conditions", []):
        if c["type"] in ("Complete", "Failed") and c["status"] == "True":
            return str(c["type"])
    return None


def _job_pod(tb: Testbed, ns: str, job: str) -> dict[str, Any]:
    pods = tb.kube.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=f"job-name={job}")["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return dict(pods[0])


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.testbed.dscache.dev}
spec:
  group: testbed.dscache.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
              mode: {type: string, enum: [fast, safe]}
"""


def test_crd_structural_schema_rejects_invalid_object(testbed: Testbed, namespace: str) -> None:
    testbed.kubectl("apply", "-f", "-", input=CRD)
    testbed.kubectl("wait", "--for=condition=Established", "crd/widgets.testbed.dscache.dev", "--timeout=60s")
    head = "apiVersion: testbed.dscache.dev/v1\nkind: Widget\n"
    good = head + "metadata: {name: good}\nspec: {size: 3, mode: safe}\n"
    testbed.wait_for(  # discovery of a brand-new CRD can lag a moment behind Established
        "valid Widget accepted",
        lambda: testbed.kubectl("apply", "-n", namespace, "-f", "-", input=good, check=False).returncode == 0,
    )
    stored = testbed.kube.get(f"/apis/testbed.dscache.dev/v1/namespaces/{namespace}/widgets/good")
    assert stored["spec"] == {"size": 3, "mode": "safe"}

    bad = head + "metadata: {name: bad}\nspec: {size: 0, mode: turbo}\n"
    proc = testbed.kubectl("apply", "-n", namespace, "-f", "-", input=bad, check=False)
    assert proc.returncode != 0
    assert "spec.size" in proc.stderr and "spec.mode" in proc.stderr, proc.stderr
    assert testbed.get(f"/apis/testbed.dscache.dev/v1/namespaces/{namespace}/widgets/bad") is None
    # Status is a subresource: a main-resource update must not change it.
    testbed.kube.patch(
        f"/apis/testbed.dscache.dev/v1/namespaces/{namespace}/widgets/good", {"status": {"x": 1}}
    )
    assert "status" not in testbed.kube.get(
        f"/apis/testbed.dscache.dev/v1/namespaces/{namespace}/widgets/good"
    )


def test_job_completes_through_job_controller(testbed: Testbed, namespace: str) -> None:
    testbed.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=_job("ok", "echo hello from $(cat /etc/hostname); printf done > /dev/termination-log"),
    )
    assert testbed.wait_for("job ok finished", lambda: _job_condition(testbed, namespace, "ok")) == "Complete"
    pod = _job_pod(testbed, namespace, "ok")
    assert pod["status"]["phase"] == "Succeeded"
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    assert term["message"] == "done"
    name = pod["metadata"]["name"]
    # Through the API server's node proxy to the kubelet. A host-network pod's hostname is the
    # node's (the bed puts every pod on the host network).
    assert f"hello from {socket.gethostname()}" in testbed.logs(namespace, name, "main")


def test_failed_job_reports_exit_code(testbed: Testbed, namespace: str) -> None:
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=_job("boom", "echo oops >&2; exit 3"))
    assert (
        testbed.wait_for("job boom finished", lambda: _job_condition(testbed, namespace, "boom")) == "Failed"
    )
    pod = _job_pod(testbed, namespace, "boom")
    assert pod["status"]["phase"] == "Failed"
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"


def test_pod_init_containers_volumes_and_env(testbed: Testbed, namespace: str) -> None:
    """Init containers run first and in order; emptyDir, ConfigMap, hostPath and env are honoured."""
    testbed.kube.post(
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"metadata": {"name": "cfg"}, "data": {"greeting": "hi", "file.txt": "from-cm\n"}},
    )
    host_dir = f"{testbed.root}/hostpath/testbed-{uuid.uuid4().hex[:6]}"  # removed with the bed
    spec = {
        "restartPolicy": "Never",
        "volumes": [
            {"name": "work", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "host", "hostPath": {"path": host_dir, "type": "DirectoryOrCreate"}},
        ],
        "initContainers": [
            {
                "name": "first",
                "image": "busybox",
                "command": ["sh", "-c", "echo one > /work/order"],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}],
            },
            {
                "name": "second",
                "image": "busybox",
                "command": ["sh", "-c", "echo two >> /work/order"],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}],
            },
        ],
        "containers": [
            {
                "name": "main",
                "image": "busybox",
                "workingDir": "/work",
                "command": [
                    "sh",
                    "-c",
                    "cat order /etc/cfg/file.txt > /host/out; echo $(GREETING)-$POD_NS >> /host/out",
                ],
                "env": [{"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "X_"}],
                "volumeMounts": [
                    {"name": "work", "mountPath": "/work"},
                    {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True},
                    {"name": "host", "mountPath": "/host"},
                ],
            }
        ],
    }
    # $(GREETING) is expanded by the kubelet from the container env, so define it from envFrom.
    spec["containers"][0]["env"].insert(0, {"name": "GREETING", "value": "$(X_greeting)"})
    testbed.kube.post(f"/api/v1/namespaces/{namespace}/pods", {"metadata": {"name": "p"}, "spec": spec})
    pod = testbed.wait_for(
        "pod p finished",
        lambda: (
            (p := testbed.get(f"/api/v1/namespaces/{namespace}/pods/p"))
            and p["status"].get("phase") in ("Succeeded", "Failed")
            and p
        ),
    )
    assert pod["status"]["phase"] == "Succeeded", json.dumps(pod["status"], indent=1)
    assert [c["state"]["terminated"]["exitCode"] for c in pod["status"]["initContainerStatuses"]] == [0, 0]
    assert Path(host_dir, "out").read_text().split() == ["one", "two", "from-cm", f"hi-{namespace}"]


def test_pvc_is_bound_and_shared_between_pods(testbed: Testbed, namespace: str) -> None:
    testbed.kube.post(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    testbed.wait_for(
        "pvc bound",
        lambda: (
            (testbed.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/data") or {})
            .get("status", {})
            .get("phase")
            == "Bound"
        ),
    )
    vol = {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}
    mount = [{"name": "d", "mountPath": "/data"}]
    for job, script in (("writer", "echo payload > /data/f"), ("reader", 'test "$(cat /data/f)" = payload')):
        manifest = json.loads(_job(job, script, **vol))
        manifest["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = mount
        testbed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
        assert (
            testbed.wait_for(f"job {job}", lambda j=job: _job_condition(testbed, namespace, j)) == "Complete"
        )


def test_owner_reference_garbage_collected(testbed: Testbed, namespace: str) -> None:
    cms = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = testbed.kube.post(cms, {"metadata": {"name": "owner"}})
    testbed.kube.post(
        cms,
        {
            "metadata": {
                "name": "child",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner["metadata"]["uid"],
                    }
                ],
            }
        },
    )
    testbed.kube.post(cms, {"metadata": {"name": "bystander"}})
    testbed.kube.delete(f"{cms}/owner")
    testbed.wait_for("child collected", lambda: testbed.get(f"{cms}/child") is None)
    assert testbed.get(f"{cms}/bystander") is not None


class _Webhook(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        req = review["request"]
        self.seen.append(req)
        labels = req["object"]["metadata"].get("labels", {})
        allowed = labels.get("deny") != "yes"
        resp = {"uid": req["uid"], "allowed": allowed}
        if not allowed:
            resp["status"] = {"code": 403, "message": "denied by the test webhook"}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[tuple[int, bytes, list[dict[str, Any]]]]:
    """An HTTPS admission webhook on 127.0.0.1 with its own CA; yields (port, CA PEM, requests seen)."""
    ca = pki.make_ca(tmp_path, "webhook-ca")
    cert = pki.issue(ca, tmp_path, "webhook", "webhook", server=True, ips=("127.0.0.1",))
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (_Webhook,), {"seen": seen})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert.cert), str(cert.key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1], ca.cert.read_bytes(), seen
    srv.shutdown()


def test_validating_webhook_reaches_local_https_endpoint(
    testbed: Testbed, namespace: str, webhook_server: tuple[int, bytes, list[dict[str, Any]]]
) -> None:
    port, ca_pem, seen = webhook_server
    name = f"{namespace}.testbed.dscache.dev"
    testbed.kube.post(
        VALIDATING_HOOKS,
        configmap_create_hook(
            name,
            namespace,
            {
                "url": f"https://127.0.0.1:{port}/validate",
                "caBundle": base64.b64encode(ca_pem).decode(),
            },
        ),
    )
    try:
        cms = f"/api/v1/namespaces/{namespace}/configmaps"

        # The webhook configuration is picked up asynchronously; wait until it denies.
        def denied() -> bool:
            try:
                testbed.kube.post(cms, {"metadata": {"generateName": "x-", "labels": {"deny": "yes"}}})
            except ApiError as e:
                assert e.status == 403 and "denied by the test webhook" in str(e), e
                return True
            return False

        testbed.wait_for("webhook in force", denied, timeout=30)
        testbed.kube.post(cms, {"metadata": {"name": "fine"}})
        assert any(r["namespace"] == namespace and r["name"] == "fine" for r in seen)
    finally:
        testbed.kube.delete(f"{VALIDATING_HOOKS}/{name}")


def test_validating_admission_policy_denies(testbed: Testbed, namespace: str) -> None:
    name = f"{namespace}-policy"
    base = "/apis/admissionregistration.k8s.io/v1"
    testbed.kube.post(
        f"{base}/validatingadmissionpolicies",
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "!has(object.data) || !('forbidden' in object.data)",
                        "message": "forbidden key",
                    }
                ],
            },
        },
    )
    testbed.kube.post(
        f"{base}/validatingadmissionpolicybindings",
        {
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        },
    )
    try:
        cms = f"/api/v1/namespaces/{namespace}/configmaps"

        def denied() -> bool:
            try:
                testbed.kube.post(cms, {"metadata": {"generateName": "x-"}, "data": {"forbidden": "1"}})
            except ApiError as e:
                assert "forbidden key" in str(e), e
                return True
            return False

        testbed.wait_for("policy in force", denied, timeout=30)
        testbed.kube.post(cms, {"metadata": {"name": "ok"}, "data": {"fine": "1"}})
    finally:
        testbed.kube.delete(f"{base}/validatingadmissionpolicybindings/{name}")
        testbed.kube.delete(f"{base}/validatingadmissionpolicies/{name}")


SA_CHECK = r"""
import json, os, ssl, urllib.request, urllib.error
d = "/var/run/secrets/kubernetes.io/serviceaccount"
ctx = ssl.create_default_context(cafile=f"{d}/ca.crt")
base = f"https://{os.environ['KUBERNETES_SERVICE_HOST']}:{os.environ['KUBERNETES_SERVICE_PORT']}"
hdr = {"Authorization": "Bearer " + open(f"{d}/token").read(), "Content-Type": "application/json"}
ns = open(f"{d}/namespace").read()
body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode()
req = urllib.request.Request(base + "/apis/authentication.k8s.io/v1/selfsubjectreviews", body, hdr)
print("user", json.load(urllib.request.urlopen(req, context=ctx))["status"]["userInfo"]["username"])
try:
    secrets = urllib.request.Request(f"{base}/api/v1/namespaces/{ns}/secrets", None, hdr)
    urllib.request.urlopen(secrets, context=ctx)
    print("secrets allowed")
except urllib.error.HTTPError as e:
    print("secrets", e.code)
"""


def test_pod_serviceaccount_token_and_rbac(testbed: Testbed, namespace: str) -> None:
    """In-cluster config works from a pod: the projected token authenticates, and RBAC still applies."""
    manifest = json.loads(_job("sa", 'python3 -c "$SCRIPT"'))
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container.update(image="python:3.11", env=[{"name": "SCRIPT", "value": SA_CHECK}])
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    cond = testbed.wait_for("job sa", lambda: _job_condition(testbed, namespace, "sa"))
    pod = _job_pod(testbed, namespace, "sa")
    out = testbed.logs(namespace, pod["metadata"]["name"], "main")
    assert cond == "Complete", out
    assert f"user system:serviceaccount:{namespace}:default" in out
    assert "secrets 403" in out


def test_pod_deletion_stops_process(testbed: Testbed, namespace: str) -> None:
    testbed.kube.post(
        f"/api/v1/namespaces/{namespace}/pods",
        {
            "metadata": {"name": "sleeper"},
            "spec": {
                "terminationGracePeriodSeconds": 2,
                "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}],
            },
        },
    )
    path = f"/api/v1/namespaces/{namespace}/pods/sleeper"
    testbed.wait_for(
        "sleeper running", lambda: (testbed.get(path) or {}).get("status", {}).get("phase") == "Running"
    )
    pid = testbed.container_pid(testbed.kube.get(path)["status"]["containerStatuses"][0]["containerID"])
    assert pid is not None and "sleep" in Path(f"/proc/{pid}/cmdline").read_text()
    testbed.kube.delete(path)
    testbed.wait_for("sleeper gone", lambda: testbed.get(path) is None, timeout=30)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_deployment_becomes_available_and_restarts_crashing_container(
    testbed: Testbed, namespace: str
) -> None:
    """Long-running pods (the operator's Deployment) report readiness; a crashing one is restarted."""
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "python:3.11",
                            "command": ["python3", "-m", "http.server", "--bind", "127.0.0.1", "0"],
                            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
                        }
                    ]
                },
            },
        },
    }
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    testbed.kubectl("rollout", "status", "-n", namespace, "deployment/web", "--timeout=60s")
    crash = {
        "metadata": {"name": "crash"},
        "spec": {
            "restartPolicy": "Always",
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "echo run; exit 7"]}],
        },
    }
    testbed.kube.post(f"/api/v1/namespaces/{namespace}/pods", crash)

    def restarted() -> dict[str, Any] | None:
        pod = testbed.get(f"/api/v1/namespaces/{namespace}/pods/crash") or {}
        st = (pod.get("status", {}).get("containerStatuses") or [{}])[0]
        return st if st.get("restartCount", 0) >= 1 else None

    st = testbed.wait_for("crash restarted", restarted, timeout=30)
    assert st["lastState"]["terminated"]["exitCode"] == 7


def test_helm_installs_and_uninstalls_a_chart(testbed: Testbed, namespace: str, tmp_path: Path) -> None:
    """The pinned helm client works against the bed (release secrets, RBAC, server-side objects)."""
    chart = tmp_path / "mini"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: mini\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mini}\n"
        "data: {greeting: {{ .Values.greeting | quote }}}\n"
    )
    env = {
        **os.environ,
        "KUBECONFIG": str(testbed.kubeconfig),
        "HELM_CACHE_HOME": str(tmp_path / "hc"),
        "HELM_CONFIG_HOME": str(tmp_path / "hcfg"),
        "HELM_DATA_HOME": str(tmp_path / "hd"),
    }

    def helm(*args: str) -> str:
        proc = subprocess.run(
            [str(testbed.helm_bin), *args, "-n", namespace],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    helm("install", "mini", str(chart), "--set", "greeting=hi", "--wait", "--timeout", "60s")
    cm = testbed.kube.get(f"/api/v1/namespaces/{namespace}/configmaps/mini")
    assert cm["data"] == {"greeting": "hi"}
    assert "mini" in helm("list", "-q")
    helm("uninstall", "mini", "--wait")
    assert testbed.get(f"/api/v1/namespaces/{namespace}/configmaps/mini") is None


def test_dscache_image_runs_the_installed_cli(testbed: Testbed, namespace: str) -> None:
    """A pod of the project's image runs the installed `dscache` entrypoint (no command given)."""
    manifest = json.loads(_job("cli", "unused"))
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    del container["command"]
    container.update(image=images.project_ref(), args=["--version"])
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    cond = testbed.wait_for("job cli", lambda: _job_condition(testbed, namespace, "cli"))
    pod = _job_pod(testbed, namespace, "cli")
    out = testbed.logs(namespace, pod["metadata"]["name"], "main")
    assert cond == "Complete", out
    assert out.startswith("dscache "), out


HOOK_SERVER = r"""
import json, ssl, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["request"]
        deny = req["object"]["metadata"].get("labels", {}).get("deny") == "yes"
        resp = {"uid": req["uid"], "allowed": not deny}
        if deny:
            resp["status"] = {"code": 403, "message": "denied by the in-cluster webhook"}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

srv = HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain("/tls/tls.crt", "/tls/tls.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"""


def test_webhook_through_service_reaches_pod(testbed: Testbed, namespace: str, tmp_path: Path) -> None:
    """The API server calls a webhook by Service (as the chart registers it) and reaches the pod."""
    ca = pki.make_ca(tmp_path, "hook-ca")
    tls = pki.issue(ca, tmp_path, "hook", "hook", server=True, dns_names=(f"hook.{namespace}.svc",))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    ns_api = f"/api/v1/namespaces/{namespace}"
    testbed.kube.post(
        f"{ns_api}/secrets",
        {
            "metadata": {"name": "tls"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": b64(tls.cert), "tls.key": b64(tls.key)},
        },
    )
    testbed.kube.post(f"{ns_api}/configmaps", {"metadata": {"name": "app"}, "data": {"hook.py": HOOK_SERVER}})
    testbed.kube.post(
        f"{ns_api}/pods",
        {
            "metadata": {"name": "hook", "labels": {"app": "hook"}},
            "spec": {
                "volumes": [
                    {"name": "tls", "secret": {"secretName": "tls"}},
                    {"name": "app", "configMap": {"name": "app"}},
                ],
                "containers": [
                    {
                        "name": "hook",
                        "image": "python:3.11",
                        "command": ["python3", "/app/hook.py", str(port)],
                        "ports": [{"name": "https", "containerPort": port}],
                        "readinessProbe": {"tcpSocket": {"port": "https"}, "periodSeconds": 1},
                        "volumeMounts": [
                            {"name": "tls", "mountPath": "/tls", "readOnly": True},
                            {"name": "app", "mountPath": "/app"},
                        ],
                    }
                ],
            },
        },
    )
    testbed.kube.post(
        f"{ns_api}/services",
        {
            "metadata": {"name": "hook"},
            "spec": {"selector": {"app": "hook"}, "ports": [{"port": 443, "targetPort": "https"}]},
        },
    )
    testbed.kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/hook", "--timeout=60s")
    name = f"svc.{namespace}.testbed.dscache.dev"
    testbed.kube.post(
        VALIDATING_HOOKS,
        configmap_create_hook(
            name,
            namespace,
            {
                "service": {"namespace": namespace, "name": "hook", "path": "/validate"},
                "caBundle": b64(ca.cert),
            },
        ),
    )
    try:

        def denied() -> bool:
            try:
                testbed.kube.post(
                    f"{ns_api}/configmaps", {"metadata": {"generateName": "x-", "labels": {"deny": "yes"}}}
                )
            except ApiError as e:
                assert e.status == 403 and "denied by the in-cluster webhook" in str(e), e
                return True
            return False

        testbed.wait_for("webhook via Service in force", denied, timeout=30)
        testbed.kube.post(f"{ns_api}/configmaps", {"metadata": {"name": "fine"}})
    finally:
        testbed.kube.delete(f"{VALIDATING_HOOKS}/{name}")
