"""The admission server in its own thread: HTTPS, AdmissionReviews, dev-mode registration, the index.

The API is the in-memory fake; requests to it are counted. The server's thread has its own event loop,
as in the operator, where kopf's loop runs in the main thread.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dscache_operator.admissionserver import AdmissionServer, ServerApi
from dscache_operator.kubeapi import dsc_path
from dscache_operator.settings import Settings, WebhookSettings
from tests.dscache_operator.fakekube import FakeKube
from tests.factories import version_items

MUTATING = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/test.dscache.io"
VALIDATING = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/test.dscache.io"


def dsc(name: str, bucket: str = "b", phase: str = "Ready") -> dict[str, Any]:
    return {
        "apiVersion": "dscache.io/v1alpha1",
        "kind": "DatasetCache",
        "metadata": {"name": name, "namespace": "ml", "generation": 1},
        "spec": {
            "source": {"s3": {"bucket": bucket}},
            "versions": version_items("objects/thor=v1"),
            "volume": {"claimName": "shared"},
        },
        "status": {"phase": phase, "observedGeneration": 1},
    }


def pod_review(cache: str, uid: str = "u-1") -> dict[str, Any]:
    pod = {
        "metadata": {"name": "train", "namespace": "ml", "labels": {"dscache.io/cache": cache}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }
    request = {"uid": uid, "operation": "CREATE", "namespace": "ml", "object": pod}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def cache_review(obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    request = {"uid": "u-2", "operation": "CREATE", "namespace": "ml", "object": obj, "dryRun": dry_run}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


class Running:
    def __init__(self, server: AdmissionServer, kube: FakeKube) -> None:
        self.server, self.kube = server, kube
        bundle = kube.webhook_configurations[MUTATING]["webhooks"][0]["clientConfig"]["caBundle"]
        self.tls = ssl.create_default_context(cadata=base64.b64decode(bundle).decode())

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.tls, timeout=10)
        try:
            conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode()

    def review(self, hook: str, review: dict[str, Any]) -> dict[str, Any]:
        status, body = self.post(f"/{hook}", review)
        assert status == 200, body
        return dict(body["response"])

    def wait_indexed(self, name: str) -> None:
        deadline = time.monotonic() + 5
        index = self.server.index
        while index is None or index.get("ml", name) is None:
            assert time.monotonic() < deadline, f"{name} never reached the index"
            time.sleep(0.01)
            index = self.server.index


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings(port: int = 0) -> Settings:
    hook = WebhookSettings(dev=True, host="127.0.0.1", port=port or free_port())
    return Settings(namespaces=("ml",), peering_name="test", webhook=hook)


@pytest.fixture
def running() -> Iterator[Running]:
    kube = FakeKube()
    kube.put(dsc("objs"))

    async def connect() -> ServerApi:
        return kube

    server = AdmissionServer(settings(), connect)
    server.start()
    try:
        yield Running(server, kube)
    finally:
        server.stop()


def test_dev_mode_registers_both_webhooks_at_its_own_url(running: Running) -> None:
    mutating = running.kube.webhook_configurations[MUTATING]
    validating = running.kube.webhook_configurations[VALIDATING]
    [pods] = mutating["webhooks"]
    [caches] = validating["webhooks"]
    assert pods["name"] == "mutate-pods.test.dscache.io"
    assert pods["clientConfig"]["url"] == f"https://127.0.0.1:{running.server.port}/mutate-pods"
    assert pods["rules"][0]["resources"] == ["pods"] and pods["failurePolicy"] == "Fail"
    assert pods["reinvocationPolicy"] == "Never"  # as the chart's default: one call per pod
    assert {e["key"]: e["operator"] for e in pods["objectSelector"]["matchExpressions"]} == {
        "dscache.io/cache": "Exists",
        "dscache.io/component": "DoesNotExist",
    }
    assert pods["namespaceSelector"]["matchExpressions"][0]["values"] == ["ml"]
    assert caches["name"] == "validate-datasetcaches.test.dscache.io"
    assert caches["clientConfig"]["url"].endswith("/validate-datasetcaches")
    assert caches["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    [condition] = caches["matchConditions"]
    assert condition["expression"] == "request.operation != 'UPDATE' || object.spec != oldObject.spec"


def test_a_labelled_pod_gets_its_patch_without_a_request_to_the_api_server(running: Running) -> None:
    running.wait_indexed("objs")
    before = len(running.kube.requests)
    response = running.review("mutate-pods", pod_review("objs"))
    assert response["uid"] == "u-1" and response["allowed"] is True
    ops = json.loads(base64.b64decode(response["patch"]))
    assert response["patchType"] == "JSONPatch"
    assert any(op["path"] == "/spec/initContainers" for op in ops)
    assert running.kube.requests[before:] == []


def test_a_cache_created_while_serving_reaches_pods_through_the_watch(running: Running) -> None:
    running.wait_indexed("objs")
    running.kube.put(dsc("later", phase="Installing"))
    running.wait_indexed("later")
    before = len(running.kube.requests)
    response = running.review("mutate-pods", pod_review("later"))
    assert response["allowed"] is True and "DatasetCache later is Installing" in response["warnings"][0]
    assert running.kube.requests[before:] == []


def test_a_label_naming_no_cache_is_refused_with_what_to_fix(running: Running) -> None:
    running.wait_indexed("objs")
    response = running.review("mutate-pods", pod_review("nope"))
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert "DatasetCache nope does not exist in namespace ml" in response["status"]["message"]
    assert ("get", dsc_path("ml", "nope")) in running.kube.requests


def test_a_clash_on_the_claim_is_refused_and_a_dry_run_holds_nothing(running: Running) -> None:
    running.wait_indexed("objs")
    clash = running.review("validate-datasetcaches", cache_review(dsc("other", bucket="elsewhere")))
    assert clash["allowed"] is False and clash["status"]["code"] == 400
    assert "claim shared already holds objects/thor" in clash["status"]["message"]
    separate = dsc("mine", bucket="elsewhere")
    separate["spec"]["volume"] = {"claimName": "mine"}
    assert running.review("validate-datasetcaches", cache_review(separate, dry_run=True))["allowed"]
    second = dsc("second", bucket="third")
    second["spec"]["volume"] = {"claimName": "mine"}
    assert running.review("validate-datasetcaches", cache_review(second))["allowed"]


def test_what_is_not_an_admission_review_is_a_client_error(running: Running) -> None:
    assert running.post("/mutate-pods", {"kind": "Pod"})[0] == 400
    assert running.post("/mutate-everything", pod_review("objs"))[0] == 404


def test_an_api_failure_on_a_fallback_read_refuses_naming_the_webhook() -> None:
    class Failing(FakeKube):
        async def get(self, path: str) -> dict[str, Any] | None:
            raise ConnectionError("API server unreachable")

    kube = Failing()

    async def connect() -> ServerApi:
        return kube

    server = AdmissionServer(settings(), connect)
    server.start()
    try:
        response = Running(server, kube).review("mutate-pods", pod_review("objs"))
    finally:
        server.stop()
    assert response["allowed"] is False and response["status"]["code"] == 500
    assert response["status"]["message"] == ("dscache webhook mutate-pods failed: API server unreachable")


def test_stopping_removes_the_configurations_it_still_owns() -> None:
    kube = FakeKube()

    async def connect() -> ServerApi:
        return kube

    server = AdmissionServer(settings(), connect)
    server.start()
    kube.objects[VALIDATING]["webhooks"][0]["clientConfig"]["url"] = "https://10.0.0.9:9443/x"  # taken over
    server.stop()
    assert MUTATING not in kube.objects and VALIDATING in kube.objects
    assert ("close", "") in kube.requests


def test_a_port_in_use_fails_the_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def connect() -> ServerApi:
            return FakeKube()

        server = AdmissionServer(settings(port=port), connect)
        with pytest.raises(OSError):
            server.start()
        assert not server.failed.is_set()
