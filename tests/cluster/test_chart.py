"""The Helm chart on the test bed: every rendered object accepted by the real API server; the RBAC
asked of the real authorizer; and an install whose operator (the chart's Deployment, in-cluster with the
chart's ServiceAccount) admits, installs and deletes a DatasetCache, mutates and denies pods through
the chart's webhook Service and certificate, passes `helm test`, and is refused what it is not granted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from dscache_testbed.fixtures import Testbed

from dscache.api.names import VersionKey
from tests.charts.chart import CHART, VARIANTS, render_text, set_args, variant
from tests.cluster import operator_fixtures as opf
from tests.factories import version_items
from tests.servers.s3 import S3Env

pytestmark = pytest.mark.cluster
WAIT = "240s"  # helm --wait: the operator Ready (38 s on a quiet machine, 122 s at load average 7-18)
crds = opf.crds

# Kinds whose CRDs (cert-manager, prometheus-operator) the bed does not have: the API server cannot
# validate them, the template tests check their fields.
THIRD_PARTY_KINDS = {"Certificate", "Issuer", "ServiceMonitor", "PrometheusRule"}

Helm = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def helm(testbed: Testbed, tmp_path: Path) -> Helm:
    """The pinned helm against the bed, with private cache/config dirs."""
    env = {
        **os.environ,
        "KUBECONFIG": str(testbed.kubeconfig),
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
    }

    def run(*args: str, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(testbed.helm_bin), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_rendered_objects_pass_server_side_validation(
    testbed: Testbed, crds: None, namespace: str, name: str
) -> None:
    release = f"dry-{uuid.uuid4().hex[:6]}"
    docs = [d for d in yaml.safe_load_all(render_text(variant(name, namespace), namespace, release)) if d]
    checked = [d for d in docs if d["kind"] not in THIRD_PARTY_KINDS]
    assert {d["kind"] for d in docs} - {d["kind"] for d in checked} <= THIRD_PARTY_KINDS
    restricted = [
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    ]
    testbed.kubectl("label", "namespace", namespace, *restricted)
    # Pod admission looks the ServiceAccount up, which a dry run does not create: make it for real.
    for pod in (d for d in docs if d["kind"] == "Pod"):
        testbed.kubectl("create", "serviceaccount", pod["spec"]["serviceAccountName"], "-n", namespace)
    proc = testbed.kubectl(
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        input="\n---\n".join(json.dumps(d) for d in checked),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "PodSecurity" not in proc.stderr, proc.stderr  # the Deployment would pass `restricted`
    assert proc.stdout.count("(server dry run)") == len(checked), proc.stdout


def _can(testbed: Testbed, account: str, *args: str) -> bool:
    proc = testbed.kubectl("auth", "can-i", *args, f"--as={account}", check=False)
    assert proc.stdout.strip() in ("yes", "no"), proc.stderr
    return proc.stdout.strip() == "yes"


def test_cluster_wide_rbac_grants_the_operator_calls_and_nothing_else(
    testbed: Testbed, crds: None, namespace: str
) -> None:
    """The default (all namespaces) ClusterRole, applied for real and asked by the RBAC authorizer."""
    release = f"rbac-{uuid.uuid4().hex[:6]}"
    rendered = render_text({}, namespace, release)
    docs = [
        d
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    ]
    testbed.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))
    account = f"system:serviceaccount:{namespace}:{release}-dscache"
    try:
        for verb, resource in [
            ("watch", "datasetcaches.dscache.io"),
            ("patch", "datasetcaches.dscache.io --subresource=status"),
            ("create", "jobs.batch"),
            ("delete", "jobs.batch"),
            ("list", "pods"),
            ("patch", "persistentvolumeclaims"),
            ("create", "roles.rbac.authorization.k8s.io"),
            ("create", "events"),
            ("patch", "clusterkopfpeerings.kopf.dev"),
            ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
        ]:
            assert _can(testbed, account, verb, *resource.split(), "-A"), f"{verb} {resource} denied"
        for verb, resource in [
            ("get", "secrets"),
            ("delete", "persistentvolumeclaims"),
            ("create", "pods"),
            ("update", "datasetcaches.dscache.io"),
            ("update", "datasetcaches.dscache.io --subresource=status"),
            ("delete", "datasetcaches.dscache.io"),
            ("create", "clusterroles.rbac.authorization.k8s.io"),
            ("create", "customresourcedefinitions.apiextensions.k8s.io"),
        ]:
            assert not _can(testbed, account, verb, *resource.split(), "-A"), f"{verb} {resource} allowed"
    finally:
        for kind in ("clusterrolebinding", "clusterrole"):
            testbed.kubectl("delete", kind, f"{release}-dscache", "--ignore-not-found")


V1 = VersionKey("objects", "thor", "v1")


def _pod(name: str, cache: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"dscache.io/cache": cache}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "train", "image": "busybox:1.36", "command": ["true"]}],
            },
        }
    )


@pytest.mark.timeout(600)  # two `helm --wait`s of up to WAIT each, on a machine that may be loaded
def test_helm_install_operator_and_webhooks_work_with_chart_rbac(
    testbed: Testbed,
    crds: None,
    namespace: str,
    helm: Helm,
    s3: S3Env,
    tmp_path: Path,
) -> None:
    """Release in `namespace`; workloads in a second, labelled namespace the webhooks select."""
    release = f"dscache-{uuid.uuid4().hex[:6]}"
    workloads = f"{namespace}-w"
    testbed.kube.post("/api/v1/namespaces", {"metadata": {"name": workloads, "labels": {release: "on"}}})
    values = {
        # Only these namespaces: never other tests' (the bed is shared).
        "operator.watchNamespaces[0]": workloads,
        "operator.watchNamespaces[1]": namespace,
        "operator.healthPort": str(opf.free_port()),  # pods share the host network on the bed
        "metrics.port": str(opf.free_port()),
        "webhook.port": str(opf.free_port()),
        # Cluster-wide webhook configurations, limited to the namespace labelled for this release.
        f"webhook.namespaceSelector.matchLabels.{release}": "on",
        "webhook.failurePolicy": "Fail",  # so an unreachable webhook cannot pass for an answer
        "crds.enabled": "false",  # the bed's CRDs are shared by every test (the `crds` fixture)
        # One node, host network: a second replica could not bind the same ports
        # (test_webhook_availability.py runs two).
        "operator.replicas": "1",
    }
    # The operator and test pods must pass the `restricted` Pod Security Standard, enforced here.
    testbed.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    try:
        install = helm(
            "install", release, str(CHART), "-n", namespace, *set_args(values), "--wait", "--timeout", WAIT
        )
        notes = install.stdout.split("NOTES:", 1)[1]
        assert f"helm test {release} -n {namespace}" in notes and "dscache.io/cache" in notes
        [pod] = testbed.kube.get(
            f"/api/v1/namespaces/{namespace}/pods", labelSelector="app.kubernetes.io/component=operator"
        )["items"]
        assert pod["spec"]["serviceAccountName"] == release
        # The bed exempts its host-network runtime class from Pod Security (hack/README.md), so the
        # `restricted` check runs on the operator's pod template as a server-side dry-run, which the
        # bed's host-network policy leaves as written; a root pod is refused the same way.
        deployment = testbed.kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{release}")
        as_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "restricted"}}
        template = {**as_pod, "spec": deployment["spec"]["template"]["spec"]}
        testbed.kubectl("create", "-n", namespace, "--dry-run=server", "-f", "-", input=json.dumps(template))
        root_pod = {**as_pod, "spec": json.loads(_pod("root", "none"))["spec"]}
        refused = testbed.kubectl(
            "create", "-n", namespace, "--dry-run=server", "-f", "-", input=json.dumps(root_pod), check=False
        )
        assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr
        operator_pod = pod["metadata"]["name"]

        # A DatasetCache admitted by the validating webhook, installed by the operator's Jobs.
        files: dict[str, Any] = {"a.bin": 100_000, "b.txt": "hello"}  # sizes or contents
        opf.Remote(s3, "data").publish(tmp_path, V1, files)
        opf.create_secret(testbed, workloads, "testing", "testing-secret")
        spec: dict[str, Any] = {
            "source": opf.s3_source(s3, "data"),
            "versions": version_items("objects/thor=v1"),
            "volume": {"create": {"size": "1Gi"}},
        }
        testbed.kubectl("apply", "-n", workloads, "-f", "-", input=opf.datasetcache("objs", spec))
        try:
            body = opf.wait_phase(testbed, workloads, "objs", "Ready", timeout=180)
        except AssertionError as err:
            raise AssertionError(
                f"{err}\noperator log:\n{testbed.logs(namespace, operator_pod, 'operator')[-4000:]}"
            ) from None
        [installed] = body["status"]["installed"]
        assert installed["version"] == "v1"
        root = opf.claim_dir(testbed, workloads, body["status"]["claimName"])
        assert (root / "objects/thor/v1/b.txt").read_text() == "hello"

        # The mutating webhook through the chart's Service, certificate and caBundle.
        mutated = testbed.kubectl(
            "create",
            "-n",
            workloads,
            "--dry-run=server",
            "-o",
            "json",
            "-f",
            "-",
            input=_pod("train", "objs"),
        )
        init = json.loads(mutated.stdout)["spec"]["initContainers"]
        assert [c["args"][0] for c in init] == ["prepare"], init
        denied = testbed.kubectl(
            "create", "-n", workloads, "-f", "-", input=_pod("lost", "nope"), check=False
        )
        assert denied.returncode != 0 and "DatasetCache nope does not exist" in denied.stderr, denied.stderr

        tested = helm("test", release, "-n", namespace, "--logs", "--timeout", "120s")
        assert "Phase:          Succeeded" in tested.stdout and "operator is live" in tested.stdout, (
            tested.stdout
        )

        # An upgrade keeps the generated certificate (looked up), so the webhooks keep working.
        secret_path = f"/api/v1/namespaces/{namespace}/secrets/{release}-webhook-tls"
        before = testbed.kube.get(secret_path)["data"]
        helm("upgrade", release, str(CHART), "-n", namespace, "--reuse-values", "--wait", "--timeout", WAIT)
        assert testbed.kube.get(secret_path)["data"] == before
        hooks = testbed.kube.get(
            f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{release}"
        )["webhooks"]
        assert hooks[0]["clientConfig"]["caBundle"] == before["ca.crt"]

        as_operator = f"--as=system:serviceaccount:{namespace}:{release}"
        secrets = testbed.kubectl("get", "secrets", "-A", as_operator, check=False)
        assert secrets.returncode != 0 and "Forbidden" in secrets.stderr, secrets.stderr
        claim = body["status"]["claimName"]
        delete = testbed.kubectl("delete", "pvc", claim, "-n", workloads, as_operator, check=False)
        assert delete.returncode != 0 and "Forbidden" in delete.stderr, delete.stderr
        assert testbed.get(f"/api/v1/namespaces/{workloads}/persistentvolumeclaims/{claim}") is not None
        other = testbed.kubectl("get", "dsc", "-n", "default", as_operator, check=False)
        assert other.returncode != 0 and "Forbidden" in other.stderr, other.stderr  # not watched

        # Deletion through the finalizer (default Retain: the created claim is kept, orphaned).
        testbed.kubectl("delete", "dsc", "objs", "-n", workloads, "--timeout=60s", timeout=70)
        pvc = testbed.get(f"/api/v1/namespaces/{workloads}/persistentvolumeclaims/{claim}")
        assert pvc is not None and not pvc["metadata"].get("ownerReferences"), pvc
    finally:
        helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "60s", check=False)
        testbed.kubectl("delete", "namespace", workloads, "--wait=false", check=False)
    for path in (
        f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{release}",
        f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{release}",
        f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{release}",
    ):
        assert testbed.get(path) is None, path


def _widget_crd(group: str, fields: dict[str, str]) -> str:
    """A stand-in for the DatasetCache CRD, of a group no other test uses (CRDs are cluster-wide)."""
    properties = {name: {"type": kind} for name, kind in fields.items()}
    return yaml.safe_dump(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {
                "group": group,
                "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {"spec": {"type": "object", "properties": properties}},
                            }
                        },
                    }
                ],
            },
        }
    )


def test_subchart_install_and_helm_upgrade_updates_the_crd(
    testbed: Testbed, crds: None, namespace: str, helm: Helm, tmp_path: Path
) -> None:
    """The chart as a dependency (with `global` values); `helm upgrade` to a chart whose CRD changed
    serves the new schema; `helm uninstall` keeps the CRD. The chart's CRD files are replaced by a
    Widget CRD of a unique group: the bed's DatasetCache CRD is shared by every test."""
    release = f"platform-{uuid.uuid4().hex[:6]}"
    group = f"{release}.test.dscache.io"
    parent = tmp_path / "platform"
    sub = parent / "charts" / "dscache"
    shutil.copytree(CHART, sub)
    (sub / "files" / "crds" / "kopf-peering.yaml").write_text("# the bed has kopf's CRDs\n")
    (sub / "files" / "crds" / "datasetcache.yaml").write_text(_widget_crd(group, {"size": "integer"}))
    (parent / "Chart.yaml").write_text(
        "apiVersion: v2\nname: platform\nversion: 1.0.0\n"
        "dependencies:\n  - name: dscache\n    version: 0.1.0\n"
    )
    values = {
        "global": {"imageRegistry": "registry.corp", "storageClass": "fast"},
        "dscache": {
            "operator": {"watchNamespaces": [namespace], "healthPort": opf.free_port()},
            "webhook": {"enabled": False},
            "metrics": {"enabled": False},
        },
    }
    (parent / "values.yaml").write_text(yaml.safe_dump(values))
    crd_path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}"

    def served_fields() -> list[str]:
        crd = testbed.kube.get(crd_path)
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        return sorted(schema["properties"]["spec"]["properties"])

    try:
        helm("install", release, str(parent), "-n", namespace)
        assert served_fields() == ["size"]
        deployment = testbed.kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{release}-dscache")
        assert deployment["metadata"]["labels"]["app.kubernetes.io/instance"] == release

        (sub / "files" / "crds" / "datasetcache.yaml").write_text(
            _widget_crd(group, {"size": "integer", "color": "string"})
        )
        helm("upgrade", release, str(parent), "-n", namespace)
        assert served_fields() == ["color", "size"]
        testbed.kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=60s")
        widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}}
        widget["spec"] = {"size": 3, "color": "red"}
        testbed.kubectl("apply", "-n", namespace, "--validate=strict", "-f", "-", input=json.dumps(widget))

        helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "60s")
        assert testbed.get(crd_path) is not None  # helm.sh/resource-policy: keep
    finally:
        helm("uninstall", release, "-n", namespace, check=False)
        testbed.kubectl("delete", "crd", f"widgets.{group}", "--wait=false", check=False)
