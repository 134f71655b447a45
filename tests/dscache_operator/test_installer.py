"""The installer's Job, manifest and RBAC, as built for a spec."""

from __future__ import annotations

from typing import Any

import yaml

from dscache.api.manifest import parse_manifest
from dscache.api.spec import parse_spec
from dscache_operator import names
from dscache_operator.installer import build_configmap, build_installer_job, build_installer_rbac, spec_hash
from dscache_operator.volume import get_claim_name
from tests.dscache_operator.builder_inputs import BODY, POD_SECURITY, SETTINGS, SPEC
from tests.factories import version_items


def _job(spec: dict[str, Any] = SPEC, in_use: list[str] | None = None) -> dict[str, Any]:
    parsed = parse_spec(spec)
    digest = spec_hash(parsed)
    name = names.installer_job_name("objs", digest)
    claim = get_claim_name("objs", parsed)
    return build_installer_job(
        BODY, parsed, SETTINGS, job_name=name, claim=claim, digest=digest, in_use=in_use or []
    )


def test_spec_hash_is_of_the_resolved_spec() -> None:
    explicit = {**SPEC, "layout": "Archives", "install": {**SPEC["install"], "parallelism": 4}}
    assert spec_hash(parse_spec(explicit)) == spec_hash(parse_spec(SPEC))
    other = {**SPEC, "versions": version_items("objects/thor=v2")}
    assert spec_hash(parse_spec(other)) != spec_hash(parse_spec(SPEC))


def test_installer_job_runs_install_then_gc_with_the_spec_settings() -> None:
    job = _job(in_use=["objects/thor=v0"])
    assert job["metadata"]["name"].startswith("objs-install-") and len(job["metadata"]["name"]) <= 63
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "dscache.io/v1alpha1",
            "kind": "DatasetCache",
            "name": "objs",
            "uid": BODY["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert job["metadata"]["annotations"][names.ANNOTATION_GENERATION] == "3"
    assert job["spec"]["backoffLimit"] == 1 and job["spec"]["activeDeadlineSeconds"] == 600
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "objs-dscache-installer"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    [install] = pod["initContainers"]
    assert install["image"] == SETTINGS.image
    assert install["args"] == [
        "install", "-f", "/etc/dscache/datasetcache.yaml", "--cache", "/cache",
        "--ref", "ml.objs", "--json", "--report-status",
    ]  # fmt: skip
    assert install["resources"] == {"limits": {"memory": "2Gi"}}
    assert install["securityContext"]["allowPrivilegeEscalation"] is False
    assert install["terminationMessagePolicy"] == "FallbackToLogsOnError"
    env = {e["name"]: e for e in install["env"]}
    assert env["DSCACHE_KUBE_API_URL"]["value"] == "https://api.example:6443"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "creds",
        "key": "AWS_SECRET_ACCESS_KEY",
        "optional": True,
    }
    [gc] = pod["containers"]
    assert gc["args"] == ["gc", "--cache", "/cache", "--keep", "1", "--json", "--in-use", "objects/thor=v0"]
    assert not any("valueFrom" in e for e in gc["env"]), "credentials reach the install container only"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["cache"]["persistentVolumeClaim"]["claimName"] == "objs-dscache"
    assert volumes["manifest"]["configMap"]["name"] == job["metadata"]["name"]


def test_installer_job_pulls_and_runs_as_the_settings_say() -> None:
    pod = _job()["spec"]["template"]["spec"]
    assert pod["securityContext"] == POD_SECURITY
    [install], [gc] = pod["initContainers"], pod["containers"]
    assert install["imagePullPolicy"] == gc["imagePullPolicy"] == "Always"
    assert install["image"] == gc["image"] == "registry.example/dscache:1.2.3"


def test_no_secret_no_credential_env() -> None:
    spec = {**SPEC, "source": {"http": {"url": "https://data.example/x"}}}
    install = _job(spec)["spec"]["template"]["spec"]["initContainers"][0]
    assert not [e for e in install["env"] if "valueFrom" in e]
    hf = {**SPEC, "source": {"huggingFace": {"repo": "o/r", "secretRef": {"name": "hf"}}}}
    env = _job(hf)["spec"]["template"]["spec"]["initContainers"][0]["env"]
    assert [e["name"] for e in env if "valueFrom" in e] == ["HF_TOKEN"]


def test_configmap_holds_a_manifest_dscache_install_accepts() -> None:
    parsed = parse_spec(SPEC)
    cm = build_configmap(BODY, parsed, "objs-install-x", "objs-dscache")
    manifest = parse_manifest(yaml.safe_load(cm["data"]["datasetcache.yaml"]))
    assert manifest.ref_name == "ml.objs" and manifest.spec == parsed


def test_installer_rbac_allows_only_this_resources_status() -> None:
    sa, role, binding = build_installer_rbac(BODY, "c")
    assert role["rules"] == [
        {
            "apiGroups": ["dscache.io"],
            "resources": ["datasetcaches/status"],
            "resourceNames": ["objs"],
            "verbs": ["get", "patch"],
        }
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "ml"}
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_only_the_install_container_gets_a_token_short_lived_and_for_the_api_server() -> None:
    pod = _job()["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False  # no default, year-long token anywhere
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["api-token"]["projected"]["sources"] == [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 600}},  # no audience: the API server's
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    ]
    [install], [gc] = pod["initContainers"], pod["containers"]
    assert {
        "name": "api-token",
        "mountPath": "/var/run/secrets/dscache.io/serviceaccount",
        "readOnly": True,
    } in (install["volumeMounts"])
    assert [m["name"] for m in gc["volumeMounts"]] == ["cache", "tmp"]
    sa, _, _ = build_installer_rbac(BODY, "c")
    assert sa["automountServiceAccountToken"] is False


def test_the_status_reporter_reads_the_token_where_the_job_mounts_it() -> None:
    from dscache.install.kubestatus import StatusTarget

    [install] = _job()["spec"]["template"]["spec"]["initContainers"]
    [mount] = [m for m in install["volumeMounts"] if m["name"] == "api-token"]
    target = StatusTarget("https://api", "ml", "objs")
    assert str(target.token_path) == f"{mount['mountPath']}/token"
    assert str(target.ca_path) == f"{mount['mountPath']}/ca.crt"


def test_gcs_and_azure_secret_keys_reach_the_install_container_only() -> None:
    cases = {
        "gcs": ({"bucket": "b", "secretRef": {"name": "gcp"}}, ["GOOGLE_APPLICATION_CREDENTIALS"]),
        "azure": (
            {"account": "acct", "container": "data", "secretRef": {"name": "az"}},
            ["AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"],
        ),
    }
    for kind, (source, keys) in cases.items():
        pod = _job({**SPEC, "source": {kind: source}})["spec"]["template"]["spec"]
        [install], [gc] = pod["initContainers"], pod["containers"]
        refs = [e["valueFrom"]["secretKeyRef"] for e in install["env"] if "valueFrom" in e]
        name = source["secretRef"]["name"]  # type: ignore[index]
        assert refs == [{"name": name, "key": key, "optional": True} for key in keys]
        assert not any("valueFrom" in e for e in gc["env"])
    plain = _job({**SPEC, "source": {"gcs": {"bucket": "b"}}})["spec"]["template"]["spec"]
    assert not any("valueFrom" in e for e in plain["initContainers"][0]["env"])  # workload identity


def test_azure_without_a_secret_marks_the_pod_for_azure_workload_identity() -> None:
    """The Azure Workload Identity webhook projects a token and AZURE_* env only into pods labelled
    `azure.workload.identity/use: "true"`; with a Secret, or another store, the pod is not labelled."""
    wi = {**SPEC, "source": {"azure": {"account": "acct", "container": "data"}}}
    labels = _job(wi)["spec"]["template"]["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true"
    where = {"account": "acct", "container": "data"}
    keyed = {**SPEC, "source": {"azure": {**where, "secretRef": {"name": "az"}}}}
    public = {**SPEC, "source": {"azure": {**where, "anonymous": True}}}
    gcs = {**SPEC, "source": {"gcs": {"bucket": "b"}}}
    for spec in (keyed, public, gcs, SPEC):
        assert "azure.workload.identity/use" not in _job(spec)["spec"]["template"]["metadata"]["labels"]
    assert "azure.workload.identity/use" not in _job(wi)["metadata"]["labels"]  # the pod's, not the Job's


def test_installer_job_keeps_the_full_image_when_a_prepare_image_is_set() -> None:
    """Installers need the remotes' clients and libarchive: only pods' init containers go slim."""
    slim = SETTINGS.model_copy(update={"prepare_image": "registry.example/dscache:9-prepare"})
    parsed = parse_spec(SPEC)
    digest = spec_hash(parsed)
    name = names.installer_job_name("objs", digest)
    job = build_installer_job(
        BODY, parsed, slim, job_name=name, claim=get_claim_name("objs", parsed), digest=digest, in_use=[]
    )
    pod = job["spec"]["template"]["spec"]
    assert {c["image"] for c in [*pod["containers"], *pod.get("initContainers", [])]} == {SETTINGS.image}
