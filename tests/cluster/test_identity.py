"""Identity and placement on the test bed: installer pods carry a DatasetCache's overrides and still
install; a web identity (the pod's own ServiceAccount token exchanged at STS) needs no Secret; an HTTP
source's credentials come from a kubernetes.io/basic-auth Secret and appear nowhere else."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from dscache_testbed.fixtures import Testbed

from dscache.api.names import VersionKey
from tests.cluster import operator_fixtures as opf
from tests.cluster import test_trust
from tests.dscache.install.test_web_identity import sts_issued
from tests.factories import make_tree, publish_archives
from tests.servers.files import FileServer
from tests.servers.s3 import S3Env

pytestmark = pytest.mark.cluster
crds = opf.crds
start_operator = opf.start_operator
guarded = test_trust.guarded  # the operator with its webhooks (dev mode)

V1 = VersionKey("objects", "thor", "v1")
STATUS_TOKEN = "/var/run/secrets/dscache.io/serviceaccount/token"


def _apply(testbed: Testbed, namespace: str, name: str, spec: dict[str, Any]) -> None:
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=opf.datasetcache(name, spec))


def _installer_pods(testbed: Testbed, namespace: str, job: str) -> list[dict[str, Any]]:
    path = f"/api/v1/namespaces/{namespace}/pods"
    return list(testbed.kube.get(path, labelSelector=f"job-name={job}")["items"])


def _service_account(testbed: Testbed, namespace: str, name: str) -> None:
    testbed.kube.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}})


def test_placement_overrides_reach_installer_pods_which_still_install(
    testbed: Testbed, namespace: str, s3: S3Env, start_operator: opf.OperatorFactory, tmp_path: Path
) -> None:
    opf.Remote(s3, "data").publish(tmp_path, V1, {"a.bin": 50_000})
    opf.create_secret(testbed, namespace, "testing", "testing-secret")
    _service_account(testbed, namespace, "reader")
    [node] = testbed.kube.get("/api/v1/nodes")["items"]
    hostname = node["metadata"]["labels"]["kubernetes.io/hostname"]
    priority = f"dscache-{namespace}"
    testbed.kube.post(
        "/apis/scheduling.k8s.io/v1/priorityclasses", {"metadata": {"name": priority}, "value": 1234}
    )
    toleration = {"key": "dscache.io/io-pool", "operator": "Exists", "effect": "NoSchedule"}
    try:
        start_operator()
        spec = {
            "source": opf.s3_source(s3, "data"),
            "versions": [{"dataType": "objects", "source": "thor", "version": "v1"}],
            "volume": {"create": {"size": "1Gi"}},
            "install": {
                "serviceAccountName": "reader",
                "nodeSelector": {"kubernetes.io/hostname": hostname},
                "tolerations": [toleration],
                "priorityClassName": priority,
                "podLabels": {"team": "ml"},
                "podAnnotations": {"cost-center": "42"},
                "env": [{"name": "NO_PROXY", "value": "127.0.0.1"}],
                "resources": {"requests": {"cpu": 1, "memory": "64Mi"}},
            },
        }
        _apply(testbed, namespace, "objs", spec)
        body = opf.wait_phase(testbed, namespace, "objs", "Ready")
    finally:
        testbed.kube.delete(f"/apis/scheduling.k8s.io/v1/priorityclasses/{priority}")
    status = body["status"]
    # The installer reported what it installed: its status token (of the user's account) was accepted.
    assert [(i["dataType"], i["source"], i["version"]) for i in status["installed"]] == [
        ("objects", "thor", "v1")
    ]
    pods = _installer_pods(testbed, namespace, status["installJob"])
    assert pods
    for pod in pods:
        spec_ = pod["spec"]
        assert spec_["serviceAccountName"] == "reader"
        assert spec_["nodeSelector"] == {"kubernetes.io/hostname": hostname}
        assert toleration in spec_["tolerations"]
        assert (spec_["priorityClassName"], spec_["priority"]) == (priority, 1234)
        assert pod["metadata"]["labels"]["team"] == "ml"
        assert pod["metadata"]["annotations"]["cost-center"] == "42"
        [install] = spec_["initContainers"]
        assert {"name": "NO_PROXY", "value": "127.0.0.1"} in install["env"]
        assert install["resources"]["requests"] == {"cpu": "1", "memory": "64Mi"}  # `cpu: 1` as in a pod
        assert spec_.get("automountServiceAccountToken") is False


def test_a_web_identity_installs_without_any_secret(
    testbed: Testbed, namespace: str, s3: S3Env, start_operator: opf.OperatorFactory, tmp_path: Path
) -> None:
    """What IRSA's webhook gives a pod (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE), set by hand here: the
    token file is the pod's own projected ServiceAccount token, exchanged at moto's STS."""
    opf.Remote(s3, "data").publish(tmp_path, V1, {"a.bin": 30_000})
    _service_account(testbed, namespace, "s3-reader")
    role = f"arn:aws:iam::123456789012:role/dscache-{uuid.uuid4().hex[:8]}"
    start_operator()
    source = opf.s3_source(s3, "data")
    del source["s3"]["secretRef"]
    spec = {
        "source": source,
        "versions": [{"dataType": "objects", "source": "thor", "version": "v1"}],
        "volume": {"create": {"size": "1Gi"}},
        "install": {
            "serviceAccountName": "s3-reader",
            "env": [
                {"name": "AWS_ROLE_ARN", "value": role},
                {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": STATUS_TOKEN},
                {"name": "AWS_ENDPOINT_URL_STS", "value": s3.server.direct_endpoint},
            ],
        },
    }
    s3.server.log.clear()
    _apply(testbed, namespace, "objs", spec)
    body = opf.wait_phase(testbed, namespace, "objs", "Ready")
    assert body["status"]["installed"]
    assert testbed.kube.get(f"/api/v1/namespaces/{namespace}/secrets")["items"] == []
    issued = sts_issued(role).keys()
    assert issued, "the installer never exchanged its token at STS"
    signed = {
        r.headers["authorization"].split("Credential=")[1].split("/")[0]
        for r in s3.server.log.all()
        if "authorization" in r.headers
    }
    assert signed and signed <= issued


def test_an_http_secret_ref_installs_and_the_credentials_appear_nowhere_else(
    testbed: Testbed, namespace: str, start_operator: opf.OperatorFactory, tmp_path: Path
) -> None:
    password = "Sup3rSecretHttpPassw0rd"
    header = "Basic " + base64.b64encode(f"robot:{password}".encode()).decode()
    with FileServer(tmp_path / "www", authorization=header) as server:
        publish_archives(make_tree(tmp_path / "tree", {"a.bin": 20_000}), server.root, V1, archive_size=8192)
        testbed.kube.post(
            f"/api/v1/namespaces/{namespace}/secrets",
            {
                "metadata": {"name": "web"},
                "type": "kubernetes.io/basic-auth",
                "stringData": {"username": "robot", "password": password},
            },
        )
        op = start_operator()
        spec = {
            "source": {"http": {"url": server.url, "secretRef": {"name": "web"}}},
            "versions": [{"dataType": "objects", "source": "thor", "version": "v1"}],
            "volume": {"create": {"size": "1Gi"}},
        }
        _apply(testbed, namespace, "web", spec)
        body = opf.wait_phase(testbed, namespace, "web", "Ready")
        assert {r.headers.get("authorization") for r in server.log.all()} == {header}
        # Credentials in the URL: refused by the reconciler (the webhook refuses them too) saying what to do.
        inline = {**spec, "source": {"http": {"url": server.url.replace("//", f"//robot:{password}@")}}}
        _apply(testbed, namespace, "inline", inline)
        refused = opf.wait_phase(testbed, namespace, "inline", "Failed")
        assert refused["status"]["message"] == (
            "spec.source.http.url: no user:password@ in the URL in a cluster (it would be stored in the "
            "spec and the installer's ConfigMap): put the credentials in a Secret of type "
            "kubernetes.io/basic-auth and name it in spec.source.http.secretRef"
        )
        pods = _installer_pods(testbed, namespace, body["status"]["installJob"])
        pod_logs = "".join(testbed.logs(namespace, p["metadata"]["name"], "install") for p in pods)
        configmaps = testbed.kube.get(f"/api/v1/namespaces/{namespace}/configmaps")["items"]
        events = testbed.kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
        for where, text in (
            ("spec", json.dumps(body["spec"])),
            ("status", json.dumps([body["status"], refused["status"]])),
            ("configmaps", json.dumps(configmaps)),
            ("events", json.dumps(events)),
            ("operator log", op.log_path.read_text()),
            ("installer log", pod_logs),
        ):
            assert password not in text and header.split()[1] not in text, f"credential leaked into {where}"


def test_the_webhook_refuses_credentials_in_a_url_and_the_crd_an_unsafe_init_container_variable(
    testbed: Testbed, namespace: str, guarded: opf.Operator
) -> None:
    inline = test_trust.spec(source={"http": {"url": "https://robot:Sup3rSecretUrlPw@data.example/x"}})
    message = test_trust.cache_refusal(testbed, namespace, "inline", inline)
    assert (
        "no user:password@ in the URL in a cluster (it would be stored in the spec and the installer's "
        "ConfigMap): put the credentials in a Secret of type kubernetes.io/basic-auth and name it in "
        "spec.source.http.secretRef"
    ) in message, message
    assert "Sup3rSecretUrlPw" not in message
    preload = test_trust.spec(prepare={"env": [{"name": "LD_PRELOAD", "value": "/dscache/objects/x.so"}]})
    message = test_trust.cache_refusal(testbed, namespace, "preload", preload)
    assert "spec.prepare.env[0]" in message
    assert "the injected init container may not get a variable that changes what code it runs" in message
    test_trust.assert_nothing_written(testbed, namespace)
