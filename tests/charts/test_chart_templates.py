"""The Helm chart as rendered by the pinned helm: lint, what each value changes, and what is refused."""

from __future__ import annotations

import ast
import base64
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from dscache.api.spec import parse_spec
from dscache_operator.cleanup import build_cleanup_job
from dscache_operator.cli import build_parser
from dscache_operator.installer import build_installer_job
from dscache_operator.podpatch import desired_pod
from dscache_operator.settings import Settings, load
from tests.charts.chart import (
    CHART,
    KUBE_VERSION,
    ROOT,
    VARIANTS,
    find,
    helm,
    one,
    render,
    set_args,
    variant,
)
from tests.factories import version_items

NS = "dscache-system"


def test_lint_strict_default_and_variants() -> None:
    helm("lint", "--strict", str(CHART))
    for name in VARIANTS:
        helm("lint", "--strict", str(CHART), *set_args(variant(name, "ml")))


def test_chart_crds_are_the_repository_crds() -> None:
    for crd in sorted((ROOT / "crds").glob("*.yaml")):
        copy = CHART / "files" / "crds" / crd.name
        assert copy.exists() and copy.read_bytes() == crd.read_bytes(), (
            f"charts/dscache/files/crds/{crd.name} differs from crds/{crd.name}: "
            "cp crds/*.yaml charts/dscache/files/crds/"
        )
    assert sorted(p.name for p in (CHART / "files" / "crds").iterdir()) == sorted(
        p.name for p in (ROOT / "crds").glob("*.yaml")
    )
    assert not (CHART / "crds").exists()  # Helm's crds/ directory is never upgraded


def _repository_crds() -> dict[str, dict[str, Any]]:
    docs = [d for f in sorted((ROOT / "crds").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    return {d["metadata"]["name"]: d for d in docs}


def test_crds_are_templates_kept_on_uninstall_so_helm_upgrade_updates_them() -> None:
    rendered = {c["metadata"]["name"]: c for c in find(render(), "CustomResourceDefinition")}
    expected = _repository_crds()
    assert (
        sorted(rendered)
        == sorted(expected)
        == [
            "clusterkopfpeerings.kopf.dev",
            "datasetcaches.dscache.io",
            "kopfpeerings.kopf.dev",
        ]
    )
    for name, crd in rendered.items():
        assert crd["spec"] == expected[name]["spec"]  # served as generated, nothing lost in templating
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    not_kept = find(render({"crds.keep": "false"}), "CustomResourceDefinition")
    assert len(not_kept) == 3 and all("annotations" not in c["metadata"] for c in not_kept)
    assert find(render({"crds.enabled": "false"}), "CustomResourceDefinition") == []


def test_usable_as_a_subchart_with_global_values(tmp_path: Path) -> None:
    parent = tmp_path / "platform"
    (parent / "charts").mkdir(parents=True)
    (parent / "Chart.yaml").write_text(
        "apiVersion: v2\nname: platform\nversion: 1.0.0\n"
        "dependencies:\n  - name: dscache\n    version: 0.1.0\n"
    )
    (parent / "values.yaml").write_text(
        "global:\n  imageRegistry: registry.corp\n  storageClass: fast\n"
        "dscache:\n  operator:\n    verbose: true\n"
    )
    shutil.copytree(CHART, parent / "charts" / "dscache")
    text = helm("template", "p", str(parent), "--kube-version", KUBE_VERSION, "-n", NS).stdout
    objects = [d for d in yaml.safe_load_all(text) if d]
    [container] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--verbose" in container["args"]
    assert len(find(objects, "CustomResourceDefinition")) == 3


def test_kube_version_is_required() -> None:
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"] == ">=1.25.0-0"
    old = helm("template", "x", str(CHART), "--kube-version", "1.24.9", check=False)
    assert old.returncode != 0 and "incompatible with Kubernetes v1.24.9" in old.stderr, old.stderr
    helm("template", "x", str(CHART), "--kube-version", "1.29.3-eks-adc7111")


def test_operator_placement_metadata_env_and_pull_secrets_are_values(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "imagePullSecrets": [{"name": "regcred"}],
                "operator": {
                    "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops"}],
                    "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
                    "priorityClassName": "system-cluster-critical",
                    "podAnnotations": {"example.com/team": "ml"},
                    "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy.corp:3128"}],
                    "extraEnvFrom": [{"configMapRef": {"name": "proxy-env"}}],
                },
            }
        )
    )
    pod = one(render(files=(values,)), "Deployment")["spec"]["template"]
    spec = pod["spec"]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "ops"}]
    assert spec["affinity"] == {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    assert spec["priorityClassName"] == "system-cluster-critical"
    assert pod["metadata"]["annotations"] == {"example.com/team": "ml"}
    [container] = spec["containers"]
    assert container["env"][-1] == {"name": "HTTPS_PROXY", "value": "http://proxy.corp:3128"}
    assert container["envFrom"] == [{"configMapRef": {"name": "proxy-env"}}]
    assert _operator_settings(render(files=(values,))).image == container["image"]


def test_versions_agree_with_the_distribution_and_operator_default_image() -> None:
    from dscache_operator.settings import DEFAULT_IMAGE

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == version
    deployment = one(render(), "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == DEFAULT_IMAGE == f"ghcr.io/dscache/dscache:{version}"


@pytest.mark.parametrize(
    ("values", "full", "init"),
    [
        ({}, "ghcr.io/dscache/dscache:{v}", "ghcr.io/dscache/dscache:{v}-prepare"),
        ({"image.tag": "1.2.3"}, "ghcr.io/dscache/dscache:1.2.3", "ghcr.io/dscache/dscache:1.2.3-prepare"),
        (
            {"image.repository": "registry.example/ml/dscache", "image.prepareTag": "1.2.3-slim"},
            "registry.example/ml/dscache:{v}",
            "registry.example/ml/dscache:1.2.3-slim",
        ),
        (
            {"image.digest": "sha256:" + "ab" * 32, "image.prepareDigest": "sha256:" + "cd" * 32},
            "ghcr.io/dscache/dscache@sha256:" + "ab" * 32,
            "ghcr.io/dscache/dscache@sha256:" + "cd" * 32,
        ),
        (  # a digest cannot be derived: pods get the full image, pinned
            {"image.digest": "sha256:" + "ab" * 32},
            "ghcr.io/dscache/dscache@sha256:" + "ab" * 32,
            "ghcr.io/dscache/dscache@sha256:" + "ab" * 32,
        ),
    ],
)
def test_pods_get_the_prepare_image_of_the_same_version_jobs_the_full_image(
    values: dict[str, str], full: str, init: str
) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    ours = _operator_settings(render({**values, "scratch.hostPaths[0]": "/mnt/nvme"}))
    body = {"metadata": {"name": "objs", "namespace": "ml", "uid": "0b5d9c1e-0001", "generation": 1}}
    spec = parse_spec(
        {
            "source": {"s3": {"bucket": "b"}},
            "versions": [{"dataType": "o", "source": "t", "version": "v1"}],
            "volume": {"claimName": "c"},
            "scratch": {"mode": "HostPath", "hostPath": {"path": "/mnt/nvme"}},
        }
    )
    job = build_installer_job(body, spec, ours, job_name="objs-install", claim="c", digest="d", in_use=[])
    assert {c["image"] for c in job["spec"]["template"]["spec"]["containers"]} == {full.format(v=version)}
    workload = {"metadata": {"labels": {"dscache.io/cache": "objs"}}, "spec": {"containers": [{"name": "m"}]}}
    inits = desired_pod(workload, body, spec, ours)["spec"]["initContainers"]
    assert [c["image"] for c in inits] == [init.format(v=version)] * 2  # scratch setup and prepare


def _operator_settings(objects: list[dict[str, Any]]) -> Settings:
    """What the chart's operator runs with: its Deployment's arguments and literal env, parsed by its CLI."""
    [container] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["dscache-operator"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return load(vars(build_parser().parse_args(container["args"])), env)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_operator_accepts_the_chart_arguments(name: str) -> None:
    """The Deployment's command line and env parse with the operator's own CLI, to the values set."""
    objects = render(variant(name, "ml"))
    [container] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "run"
    ours = _operator_settings(objects)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert ours.liveness_url == "http://0.0.0.0:8080/healthz"
    assert ours.prepare_wait == values["initContainer"]["waitSeconds"]
    assert ours.prepare_resources == values["initContainer"]["resources"]
    assert ours.image == container["image"]
    if name == "no-webhook-no-metrics":
        assert not ours.webhook.enabled and ours.metrics_port == 0
    else:
        assert (ours.webhook.cert, ours.webhook.key, ours.webhook.port) == (
            "/certs/tls.crt",
            "/certs/tls.key",
            values["webhook"]["port"],
        )
        assert ours.metrics_port == values["metrics"]["port"]
    assert ours.namespaces == (("ml",) if name == "namespaced" else ())
    if name == "pull-always-other-user":
        assert (ours.image_pull_policy, ours.run_as_user) == ("Always", 1000680000)
    else:
        assert (ours.image_pull_policy, ours.run_as_user) == ("IfNotPresent", 65532)


def test_pull_policy_and_user_reach_installer_and_cleanup_jobs_and_init_containers(tmp_path: Path) -> None:
    """From the chart's values to the manifests the operator builds (a values file: YAML numbers)."""
    values = tmp_path / "values.yaml"
    values.write_text(
        "image: {pullPolicy: Always}\n"
        "podSecurityContext: {runAsUser: 1000680000, runAsGroup: 1000680000, fsGroup: 1000680000}\n"
    )
    objects = render(files=(values,))
    operator_pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert operator_pod["containers"][0]["imagePullPolicy"] == "Always"
    ours = _operator_settings(objects)
    body = {"metadata": {"name": "objs", "namespace": "ml", "uid": "0b5d9c1e-0001", "generation": 1}}
    spec = parse_spec(
        {"source": {"s3": {"bucket": "b"}}, "versions": version_items("o/t=v1"), "volume": {"claimName": "c"}}
    )
    installer = build_installer_job(
        body, spec, ours, job_name="objs-install", claim="c", digest="d", in_use=[]
    )
    cleanup = build_cleanup_job(body, ours, claim="c", in_use=[])
    for job in (installer, cleanup):
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == 1000680000
        assert pod["securityContext"]["runAsGroup"] == pod["securityContext"]["fsGroup"] == 1000680000
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            assert c["imagePullPolicy"] == "Always", c["name"]
    workload = {"metadata": {"labels": {"dscache.io/cache": "objs"}}, "spec": {"containers": [{"name": "m"}]}}
    [init] = desired_pod(workload, body, spec, ours)["spec"]["initContainers"]
    assert init["imagePullPolicy"] == "Always"
    assert (init["securityContext"]["runAsUser"], init["securityContext"]["runAsGroup"]) == (
        1000680000,
        1000680000,
    )


def test_scratch_host_paths_reach_the_operator_and_no_host_path_is_allowed_by_default() -> None:
    assert _operator_settings(render()).scratch_host_paths == ()
    objects = render({"scratch.hostPaths[0]": "/mnt/nvme/dscache", "scratch.hostPaths[1]": "/scratch"})
    assert _operator_settings(objects).scratch_host_paths == ("/mnt/nvme/dscache", "/scratch")


def _labels_ok(obj: dict[str, Any]) -> bool:
    labels: dict[str, str] = obj["metadata"].get("labels", {})
    return {
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
        "app.kubernetes.io/managed-by",
        "app.kubernetes.io/component",
        "helm.sh/chart",
    } <= labels.keys()


def test_default_render_restricted_operator() -> None:
    objects = render(release="ml-data")
    templated = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    assert [o["kind"] for o in templated if not _labels_ok(o)] == []
    deployment = one(objects, "Deployment", "ml-data-dscache")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "ml-data-dscache"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["command"] == ["dscache-operator"]
    assert "--peering=ml-data-dscache" in container["args"]  # peering name from the release
    assert not any(a.startswith("--namespace") for a in container["args"])  # all namespaces
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"--webhook-cert=/certs/tls.crt", "--webhook-key=/certs/tls.key", "--webhook-port=9443"} <= set(
        container["args"]
    )
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DSCACHE_OPERATOR_IMAGE"] == container["image"]  # installers run the same image...
    assert env["DSCACHE_OPERATOR_IMAGE_PULL_POLICY"] == container["imagePullPolicy"] == "IfNotPresent"
    assert env["DSCACHE_OPERATOR_RUN_AS_USER"] == "65532" == str(pod["securityContext"]["runAsUser"])
    # ...and reads DSCACHE_OPERATOR_*: no service-link variables (a Service <release>-webhook in a
    # release named dscache-operator would add DSCACHE_OPERATOR_WEBHOOK_PORT=tcp://...).
    assert pod["enableServiceLinks"] is False
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/certs"]["readOnly"] is True and "/var/tmp" in mounts
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {("ClusterRole", "ml-data-dscache"), ("ServiceAccount", "ml-data-dscache")} <= names
    assert not find(objects, "Role") and not find(objects, "Certificate")
    crds = {o["metadata"]["name"] for o in find(objects, "CustomResourceDefinition")}
    assert crds == {"datasetcaches.dscache.io", "kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"}


def _webhooks(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    mutating = one(objects, "MutatingWebhookConfiguration")["webhooks"]
    validating = one(objects, "ValidatingWebhookConfiguration")["webhooks"]
    return [*mutating, *validating]


def test_webhooks_select_labelled_pods_outside_system_namespaces() -> None:
    objects = render(namespace="platform")
    service = one(objects, "Service", "dscache-webhook")
    [port] = service["spec"]["ports"]
    assert port["port"] == 443 and port["targetPort"] == "webhook"
    deployment = one(objects, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert {"name": "webhook", "containerPort": 9443} in container["ports"]
    [pods] = one(objects, "MutatingWebhookConfiguration")["webhooks"]
    assert pods["rules"][0]["resources"] == ["pods"] and pods["rules"][0]["operations"] == ["CREATE"]
    assert pods["objectSelector"] == {
        "matchExpressions": [
            {"key": "dscache.io/cache", "operator": "Exists"},
            {"key": "dscache.io/component", "operator": "DoesNotExist"},  # not installer pods
        ]
    }
    assert pods["clientConfig"]["service"]["path"] == "/mutate-pods"
    [dsc] = one(objects, "ValidatingWebhookConfiguration")["webhooks"]
    assert dsc["rules"][0]["resources"] == ["datasetcaches"]
    assert dsc["clientConfig"]["service"]["path"] == "/validate-datasetcaches"
    for hook in (pods, dsc):
        assert hook["failurePolicy"] == "Fail"
        assert hook["clientConfig"]["service"]["name"] == "dscache-webhook"
        assert hook["clientConfig"]["service"]["namespace"] == "platform"
        [expr] = hook["namespaceSelector"]["matchExpressions"]
        assert expr == {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["kube-system", "platform"],
        }


def test_failure_policy_and_extra_namespace_selector_are_values() -> None:
    objects = render(variant("failure-ignore", NS))
    for hook in _webhooks(objects):
        assert hook["failurePolicy"] == "Ignore"
        assert hook["namespaceSelector"]["matchLabels"] == {"team": "ml"}
        assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system", NS]


def test_pod_webhook_is_called_once_unless_reinvocation_is_asked_for() -> None:
    """A second call per pod, on clusters where another mutator touches every pod, is opt-in."""
    [pods] = one(render(), "MutatingWebhookConfiguration")["webhooks"]
    assert pods["reinvocationPolicy"] == "Never"
    objects = render({"webhook.reinvocationPolicy": "IfNeeded"})
    [pods] = one(objects, "MutatingWebhookConfiguration")["webhooks"]
    assert pods["reinvocationPolicy"] == "IfNeeded"


def test_generated_certificate_serves_the_webhook_service_and_matches_the_ca_bundle() -> None:
    objects = render()
    secret = one(objects, "Secret", "dscache-webhook-tls")
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    cert = x509.load_pem_x509_certificate(data["tls.crt"])
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    assert "dscache-webhook.dscache-system.svc" in sans
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    for hook in _webhooks(objects):
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == data["ca.crt"]
    deployment = one(objects, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["certs"]["secret"]["secretName"] == "dscache-webhook-tls"


def test_cert_manager_issues_the_certificate_and_injects_the_ca() -> None:
    objects = render(variant("cert-manager", NS))
    assert not find(objects, "Secret")
    cert = one(objects, "Certificate", "dscache-webhook-tls")
    assert cert["spec"]["secretName"] == "dscache-webhook-tls"
    assert "dscache-webhook.dscache-system.svc" in cert["spec"]["dnsNames"]
    issuer = one(objects, "Issuer")
    assert issuer["spec"] == {"selfSigned": {}}
    assert cert["spec"]["issuerRef"]["name"] == issuer["metadata"]["name"]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        config = one(objects, kind)
        assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
            "dscache-system/dscache-webhook-tls"
        )
        assert all("caBundle" not in h["clientConfig"] for h in config["webhooks"])

    with_issuer = render(variant("cert-manager-issuer", NS))
    assert not find(with_issuer, "Issuer")
    ref = one(with_issuer, "Certificate")["spec"]["issuerRef"]
    assert ref == {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}


def test_service_monitor_scrapes_the_metrics_service() -> None:
    assert not find(render(), "ServiceMonitor")
    objects = render(variant("service-monitor", NS))
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    service = one(objects, "Service", "dscache-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True  # the caches' own namespace label
    assert (
        not monitor["spec"]["selector"]["matchLabels"].items()
        <= one(objects, "Service", "dscache-webhook")["metadata"]["labels"].items()
    )


SELECTOR = {
    "app.kubernetes.io/name": "dscache",
    "app.kubernetes.io/instance": "dscache",
    "app.kubernetes.io/component": "operator",
}


def test_two_replicas_serve_admission_through_disruptions_and_shutdowns() -> None:
    objects = render()
    deployment = one(objects, "Deployment", "dscache")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert spec["selector"]["matchLabels"] == SELECTOR
    pdb = one(objects, "PodDisruptionBudget", "dscache")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": SELECTOR}}
    pod = spec["template"]["spec"]
    assert pod["affinity"] == {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": SELECTOR},
                    },
                }
            ]
        }
    }
    [container] = pod["containers"]
    # Ready once admission answers; a stopping pod serves 10 s more (out of the endpoints), then stops.
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "webhook", "scheme": "HTTPS"}
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert pod["terminationGracePeriodSeconds"] == 40
    assert "--peering=dscache" in container["args"]  # one reconciler among the replicas


def test_one_replica_gets_no_disruption_budget_and_old_clusters_an_exec_sleep() -> None:
    objects = render({"operator.replicas": "1", "operator.shutdownDelaySeconds": "5"})
    assert one(objects, "Deployment")["spec"]["replicas"] == 1
    assert not find(objects, "PodDisruptionBudget")  # minAvailable 1 of 1 would block every drain
    old = helm(
        "template", "x", str(CHART), "--kube-version", "1.29.4", "--set", "operator.shutdownDelaySeconds=5"
    ).stdout
    [container] = one([d for d in yaml.safe_load_all(old) if d], "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}  # no sleep action
    no_delay = render(
        {"operator.shutdownDelaySeconds": "0", "operator.podDisruptionBudget.minAvailable": "50%"}
    )
    assert "lifecycle" not in one(no_delay, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert one(no_delay, "PodDisruptionBudget")["spec"]["minAvailable"] == "50%"


def test_readiness_without_webhook_is_the_health_endpoint() -> None:
    objects = render({"webhook.enabled": "false"})
    [container] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_prometheus_rule_alerts_on_caches_not_ready_and_failed_installs() -> None:
    assert not find(render(), "PrometheusRule")  # needs prometheus-operator's CRDs: off by default
    values = {"metrics.prometheusRule.enabled": "true", "metrics.prometheusRule.labels.release": "kps"}
    rule = one(render(values, release="ml"), "PrometheusRule", "ml-dscache")
    assert rule["metadata"]["labels"]["release"] == "kps"
    [group] = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    not_ready = alerts["DatasetCacheNotReady"]
    assert (
        not_ready["expr"] == 'max by (namespace, name) (dscache_cache_ready{job="ml-dscache-metrics"}) == 0'
    )
    assert not_ready["for"] == "1h" and not_ready["labels"] == {"severity": "warning"}
    assert "{{ $labels.namespace }}/{{ $labels.name }}" in not_ready["annotations"]["summary"]
    failing = alerts["DatasetCacheInstallsFailing"]
    assert failing["expr"] == (
        'sum(increase(dscache_installs_total{job="ml-dscache-metrics", result="failed"}[1h])) > 0'
    )
    assert set(alerts) == {"DatasetCacheNotReady", "DatasetCacheInstallsFailing"}
    # The job label is the metrics Service's name (a ServiceMonitor's job).
    assert one(render(values, release="ml"), "Service", "ml-dscache-metrics")
    tuned = {**values, "metrics.prometheusRule.notReadyFor": "3h", "metrics.prometheusRule.severity": "page"}
    alerts = {r["alert"]: r for r in one(render(tuned), "PrometheusRule")["spec"]["groups"][0]["rules"]}
    assert alerts["DatasetCacheNotReady"]["for"] == "3h"
    assert alerts["DatasetCacheInstallsFailing"]["labels"] == {"severity": "page"}
    assert not find(render({**values, "metrics.enabled": "false"}), "PrometheusRule")


def test_example_prometheus_rule_is_what_the_chart_renders() -> None:
    example = yaml.safe_load((ROOT / "examples" / "prometheusrule.yaml").read_text())
    rendered = one(render({"metrics.prometheusRule.enabled": "true"}, NS, "dscache"), "PrometheusRule")
    assert (example["kind"], example["metadata"]["name"]) == ("PrometheusRule", "dscache")
    assert example["spec"] == rendered["spec"]


def test_resources_are_values() -> None:
    objects = render(variant("resources", NS))
    [container] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "200m", "memory": "256Mi"},
        "limits": {"cpu": 1, "memory": "1Gi"},
    }


def test_disabling_webhook_and_metrics_drops_their_objects_and_flags() -> None:
    objects = render(variant("no-webhook-no-metrics", NS))
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Secret", "Service"}
    [container] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--metrics-port=0" in container["args"]
    assert not any(a.startswith("--webhook") for a in container["args"])


def test_image_digest_and_existing_service_account() -> None:
    objects = render(variant("digest-and-existing-sa", NS))
    assert not find(objects, "ServiceAccount")
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "platform-operator"
    assert pod["containers"][0]["image"] == "ghcr.io/dscache/dscache@sha256:" + "ab" * 32
    assert one(objects, "ClusterRoleBinding")["subjects"][0]["name"] == "platform-operator"


# --- RBAC: exactly what dscache_operator (and kopf on its behalf) calls -----------------------------

# (apiGroup, resource) -> verbs: the operator's own REST calls (kube.py and its callers)...
OPERATOR_CALLS = {
    ("dscache.io", "datasetcaches"): {"get", "list"},
    ("dscache.io", "datasetcaches/status"): {"patch"},
    ("batch", "jobs"): {"get", "list", "create", "delete"},
    ("", "pods"): {"list"},
    ("", "configmaps"): {"create", "delete"},
    ("", "persistentvolumeclaims"): {"get", "create", "patch"},
    ("", "serviceaccounts"): {"create"},
    ("rbac.authorization.k8s.io", "roles"): {"create"},
    ("rbac.authorization.k8s.io", "rolebindings"): {"create", "patch"},
}
# ...and kopf's: watching, finalizers/annotations (patch), events, peering, CRD discovery; `get` on
# datasetcaches/status because the installer Role the operator grants has it (RBAC escalation rule).
KOPF_CALLS = {
    ("dscache.io", "datasetcaches"): {"watch", "patch"},
    ("dscache.io", "datasetcaches/status"): {"get"},
    ("batch", "jobs"): {"watch"},
    ("", "events"): {"create"},
}
PEERING_VERBS = {"get", "list", "watch", "create", "patch"}
CRD_RULE = {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}


def _rules(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule and "*" not in rule["verbs"] and "*" not in rule["resources"]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def _expected(peering: str) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {k: set(v) for k, v in OPERATOR_CALLS.items()}
    for key, verbs in KOPF_CALLS.items():
        out.setdefault(key, set()).update(verbs)
    out[("kopf.dev", peering)] = PEERING_VERBS
    return out


def _resources_the_code_calls() -> set[str]:
    """Plural resource names in the operator's API paths and in kubeapi.collection_path's kind table."""
    found: set[str] = set()
    for path in (ROOT / "operator" / "dscache_operator").glob("*.py"):
        source = path.read_text()
        found.update(re.findall(r"/namespaces/\{[^}]+\}/([a-z]+)", source))
        for func in ast.walk(ast.parse(source)):
            if isinstance(func, ast.FunctionDef) and func.name == "collection_path":
                tables = [n for n in ast.walk(func) if isinstance(n, ast.Dict)]
                found.update(ast.literal_eval(tables[0]).values())
    return found


def test_rbac_grants_exactly_the_calls_the_operator_makes() -> None:
    called = _resources_the_code_calls() - {"kopfpeerings"}
    declared = {resource for _, resource in OPERATOR_CALLS}
    # PLURAL is imported in kubeapi.py, not a literal: datasetcaches is covered by dsc_path.
    assert called | {"datasetcaches", "datasetcaches/status"} == declared, (
        "the operator calls resources the chart's RBAC table does not list (or no longer calls some)"
    )
    cluster = _rules(one(render(), "ClusterRole"))
    assert cluster == {**_expected("clusterkopfpeerings"), **CRD_RULE}


def test_namespaced_install_gets_roles_only_in_watched_namespaces() -> None:
    objects = render({"operator.watchNamespaces[0]": "team-a", "operator.watchNamespaces[1]": "team-b"})
    assert _rules(one(objects, "ClusterRole")) == {**CRD_RULE, ("", "namespaces"): {"list", "watch"}}
    roles = find(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert _rules(role) == _expected("kopfpeerings")
    bindings = find(objects, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert all(b["subjects"][0]["namespace"] == NS for b in bindings)
    [container] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [a for a in container["args"] if a.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]
    test_pod = one(objects, "Pod")
    assert "/namespaces/team-a/kopfpeerings/dscache" in test_pod["spec"]["containers"][0]["args"][0]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"webhook.failurePolicy": "Sometimes"},
            "at '/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'",
        ),
        (
            {"webhook.reinvocationPolicy": "Always"},
            "at '/webhook/reinvocationPolicy': value must be one of 'Never', 'IfNeeded'",
        ),
        ({"operator.watchNamespaces[0]": "Team_A"}, "at '/operator/watchNamespaces/0'"),
        ({"webhook.port": "70000"}, "at '/webhook/port': maximum"),
        ({"image.pullPolicy": "Sometimes"}, "at '/image/pullPolicy'"),
        ({"podSecurityContext.runAsUser": "0"}, "at '/podSecurityContext/runAsUser': minimum: got 0, want 1"),
        ({"image.digest": "latest"}, "at '/image/digest'"),
        ({"operator.resources.limits.memory": "lots"}, "at '/operator/resources/limits/memory'"),
        ({"operator.replicas": "0"}, "at '/operator/replicas': minimum: got 0, want 1"),
        (
            {"operator.podDisruptionBudget.minAvailable": "half"},
            "at '/operator/podDisruptionBudget/minAvailable'",
        ),
        ({"metrics.prometheusRule.notReadyFor": "an hour"}, "at '/metrics/prometheusRule/notReadyFor'"),
        ({"metrics.serviceMonitor.interval": "often"}, "at '/metrics/serviceMonitor/interval'"),
        ({"webhook.certManager.issuerRef.kind": "Vault"}, "at '/webhook/certManager/issuerRef/kind'"),
        ({"scratch.hostPaths[0]": "/mnt/../etc"}, "at '/scratch/hostPaths/0'"),
        ({"scratch.hostPaths[0]": "/"}, "at '/scratch/hostPaths/0'"),
        ({"operator.extraEnv[0].name": "DSCACHE_OPERATOR_IMAGE"}, "at '/operator/extraEnv/0/name'"),
        ({"crds.enabled": "maybe"}, "at '/crds/enabled'"),
    ],
)
def test_schema_rejects_bad_values_with_a_clear_message(values: dict[str, str], message: str) -> None:
    proc = helm("template", "x", str(CHART), "--kube-version", KUBE_VERSION, *set_args(values), check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_existing_service_account_needs_a_name() -> None:
    proc = helm(
        "template",
        "x",
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "serviceAccount.create=false",
        check=False,
    )
    assert proc.returncode != 0
    assert "serviceAccount.name is required when serviceAccount.create is false" in proc.stderr


def test_a_first_retry_delay_longer_than_the_longest_is_refused_naming_both_values() -> None:
    values = {"installer.retryBaseSeconds": "100", "installer.retryMaxSeconds": "10"}
    proc = helm("template", "x", str(CHART), "--kube-version", KUBE_VERSION, *set_args(values), check=False)
    assert proc.returncode != 0
    assert (
        "installer.retryBaseSeconds (100) is more than installer.retryMaxSeconds (10): the first delay "
        "before a retry cannot exceed the longest"
    ) in proc.stderr, proc.stderr
    equal = {"installer.retryBaseSeconds": "60", "installer.retryMaxSeconds": "60"}
    helm("template", "x", str(CHART), "--kube-version", KUBE_VERSION, *set_args(equal))
