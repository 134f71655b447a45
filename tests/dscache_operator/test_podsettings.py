"""Identity, placement and environment of the pods the operator runs (spec.install, chart defaults),
of the injected init container (spec.prepare), and HTTP credentials from a Secret, never in the URL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from dscache.api.spec import SpecError, parse_spec
from dscache_operator import names
from dscache_operator.admission import Admission
from dscache_operator.cacheindex import CacheIndex
from dscache_operator.cleanup import build_cleanup_job
from dscache_operator.installer import build_installer_job, build_installer_rbac, installer_account, spec_hash
from dscache_operator.podpatch import Denied, desired_pod
from dscache_operator.settings import Settings, load
from tests.dscache_operator.builder_inputs import BODY, SETTINGS, SPEC
from tests.dscache_operator.fakekube import FakeKube, as_api
from tests.dscache_operator.test_reconcile import World, cache, claim, condition, fail

PLACED: dict[str, Any] = {
    **SPEC,
    "install": {
        "serviceAccountName": "s3-reader",
        "nodeSelector": {"pool": "io"},
        "tolerations": [{"key": "io", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        "priorityClassName": "batch-low",
        "imagePullSecrets": [{"name": "regcred"}],
        "env": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
        "envFrom": [{"configMapRef": {"name": "ca-bundle-env"}}],
        "podLabels": {"team": "ml", names.LABEL_CACHE: "not-mine"},
        "podAnnotations": {"cost-center": "42"},
        "resources": {"requests": {"cpu": 2, "memory": "4Gi"}, "limits": {"cpu": 0.5}},
    },
}


def _job(spec: dict[str, Any], settings: Settings = SETTINGS) -> dict[str, Any]:
    parsed = parse_spec(spec)
    digest = spec_hash(parsed)
    name = names.installer_job_name("objs", digest)
    return build_installer_job(
        BODY, parsed, settings, job_name=name, claim="objs-dscache", digest=digest, in_use=[]
    )


def test_installer_pods_carry_the_caches_identity_placement_and_environment() -> None:
    template = _job(PLACED)["spec"]["template"]
    pod = template["spec"]
    assert pod["serviceAccountName"] == "s3-reader"
    assert pod["automountServiceAccountToken"] is False
    assert pod["nodeSelector"] == {"pool": "io"}
    assert pod["tolerations"] == [{"key": "io", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["affinity"] == {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    assert pod["priorityClassName"] == "batch-low"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert template["metadata"]["labels"]["team"] == "ml"
    assert template["metadata"]["labels"][names.LABEL_CACHE] == "objs"  # the operator's own label wins
    assert template["metadata"]["annotations"] == {"cost-center": "42"}
    [install], [gc] = pod["initContainers"], pod["containers"]
    for container in (install, gc):
        assert {"name": "HTTPS_PROXY", "value": "http://proxy:3128"} in container["env"]
        assert container["envFrom"] == [{"configMapRef": {"name": "ca-bundle-env"}}]
        # `cpu: 2` is a quantity as in every core object: kept as the text "2"
        assert container["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "0.5"}}
    assert [e["name"] for e in install["env"] if "valueFrom" in e] == [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ]
    assert not any("valueFrom" in e for e in gc["env"]), "credentials reach the install container only"
    # the status token is still projected into the install container only, for the pod's account
    assert [m["mountPath"] for m in install["volumeMounts"] if m["name"] == "api-token"] == [
        "/var/run/secrets/dscache.io/serviceaccount"
    ]
    assert not any(m["name"] == "api-token" for m in gc["volumeMounts"])


def test_without_settings_the_pods_are_as_before() -> None:
    pod = _job(SPEC)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "objs-dscache-installer"
    assert not {"nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"} & set(pod)
    assert "envFrom" not in pod["initContainers"][0]


def test_chart_defaults_merge_maps_and_the_cache_replaces_lists() -> None:
    settings = load(
        {},
        {
            "DSCACHE_OPERATOR_INSTALLER_NODE_SELECTOR": '{"pool": "io", "zone": "a"}',
            "DSCACHE_OPERATOR_INSTALLER_TOLERATIONS": '[{"key": "spot", "operator": "Exists"}]',
            "DSCACHE_OPERATOR_INSTALLER_ENV": '[{"name": "NO_PROXY", "value": ".svc"}]',
            "DSCACHE_OPERATOR_INSTALLER_POD_LABELS": '{"team": "platform", "tier": "batch"}',
            "DSCACHE_OPERATOR_INSTALLER_RESOURCES": '{"requests": {"cpu": "1", "memory": "1Gi"}}',
            "DSCACHE_OPERATOR_INSTALLER_PRIORITY_CLASS_NAME": "batch-default",
            "DSCACHE_OPERATOR_INSTALLER_SERVICE_ACCOUNT_NAME": "shared-reader",
            "DSCACHE_OPERATOR_INSTALLER_IMAGE_PULL_SECRETS": '[{"name": "mirror"}]',
        },
    )
    own = {
        **SPEC,
        "install": {
            "nodeSelector": {"zone": "b"},
            "tolerations": [],
            "env": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
            "podLabels": {"team": "ml"},
            "resources": {"requests": {"cpu": 4}},
        },
    }
    template = _job(own, settings)["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "io", "zone": "b"}  # maps merge
    assert "tolerations" not in pod  # [] replaces the default list
    assert pod["priorityClassName"] == "batch-default" and pod["imagePullSecrets"] == [{"name": "mirror"}]
    assert pod["serviceAccountName"] == "shared-reader"
    labels = template["metadata"]["labels"]
    assert (labels["team"], labels["tier"]) == ("ml", "batch")
    install = pod["initContainers"][0]
    env = {e["name"]: e.get("value") for e in install["env"]}
    assert env["HTTPS_PROXY"] == "http://proxy:3128" and "NO_PROXY" not in env  # env is a list: replaced
    assert install["resources"] == {"requests": {"cpu": "4", "memory": "1Gi"}}
    # and a cache that sets nothing gets every default
    plain = _job(SPEC, settings)["spec"]["template"]["spec"]
    assert plain["tolerations"] == [{"key": "spot", "operator": "Exists"}]
    assert {"name": "NO_PROXY", "value": ".svc"} in plain["initContainers"][0]["env"]
    assert plain["initContainers"][0]["resources"] == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    }


def test_cleanup_pods_take_the_placement_but_no_account() -> None:
    parsed = parse_spec(PLACED)
    job = build_cleanup_job(BODY, SETTINGS, claim="objs-dscache", in_use=[], spec=parsed)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "io"} and pod["priorityClassName"] == "batch-low"
    assert pod["serviceAccountName"] == "s3-reader"  # runs where the installer may (no token mounted)
    assert pod["automountServiceAccountToken"] is False
    [release] = pod["containers"]
    assert {"name": "HTTPS_PROXY", "value": "http://proxy:3128"} in release["env"]
    unplaced = build_cleanup_job(BODY, SETTINGS, claim="c", in_use=[], spec=parse_spec(SPEC))
    assert "serviceAccountName" not in unplaced["spec"]["template"]["spec"]


def test_the_users_account_is_bound_to_the_status_role() -> None:
    parsed = parse_spec(PLACED)
    _, role, binding = build_installer_rbac(BODY, "c", installer_account(parsed, SETTINGS))
    assert role["rules"][0]["resources"] == ["datasetcaches/status"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "objs-dscache-installer", "namespace": "ml"},
        {"kind": "ServiceAccount", "name": "s3-reader", "namespace": "ml"},
    ]


def test_a_quantity_that_is_not_one_is_refused_naming_the_field() -> None:
    with pytest.raises(
        SpecError, match=r"spec\.install\.resources\.requests\.cpu: .*'two' is not a Kubernetes"
    ):
        parse_spec({**SPEC, "install": {"resources": {"requests": {"cpu": "two"}}}})


def test_the_status_interval_reaches_installer_jobs() -> None:
    settings = load({"status_interval": "30"}, {})
    env = _job(SPEC, settings)["spec"]["template"]["spec"]["initContainers"][0]["env"]
    assert {"name": "DSCACHE_STATUS_INTERVAL", "value": "30"} in env
    assert not any(
        e["name"] == "DSCACHE_STATUS_INTERVAL"
        for e in _job(SPEC)["spec"]["template"]["spec"]["initContainers"][0]["env"]
    )


# --- the injected init container ------------------------------------------------------------------


def _init(spec: dict[str, Any], settings: Settings) -> dict[str, Any]:
    body = {**BODY, "spec": spec, "status": {"phase": "Ready", "observedGeneration": 3}}
    pod = {"metadata": {"labels": {names.LABEL_CACHE: "objs"}}, "spec": {"containers": [{"name": "m"}]}}
    out = desired_pod(pod, body, parse_spec(spec), settings)
    [init] = [c for c in out["spec"]["initContainers"] if c["name"] == "dscache-prepare"]
    return init


def test_the_init_container_takes_spec_prepare_over_the_operators_defaults() -> None:
    settings = load(
        {},
        {
            "DSCACHE_OPERATOR_PREPARE_ENV": '[{"name": "DSCACHE_RETRY_ATTEMPTS", "value": "3"}]',
            "DSCACHE_OPERATOR_PREPARE_ENV_FROM": '[{"configMapRef": {"name": "tuning"}}]',
        },
    )
    default = _init(SPEC, settings)
    assert default["env"] == [{"name": "DSCACHE_RETRY_ATTEMPTS", "value": "3"}]
    assert default["envFrom"] == [{"configMapRef": {"name": "tuning"}}]
    assert default["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "1Gi"},
    }
    own = {
        **SPEC,
        "prepare": {
            "env": [{"name": "DSCACHE_READ_TIMEOUT", "value": "5"}],
            "resources": {"limits": {"memory": 2147483648}},
        },
    }
    init = _init(own, settings)
    assert init["env"] == [{"name": "DSCACHE_READ_TIMEOUT", "value": "5"}]
    assert init["envFrom"] == [{"configMapRef": {"name": "tuning"}}]
    assert init["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "2147483648"},
    }


def test_changing_spec_prepare_starts_no_new_installer() -> None:
    prepared = {**SPEC, "prepare": {"env": [{"name": "DSCACHE_READ_TIMEOUT", "value": "5"}]}}
    assert spec_hash(parse_spec(prepared)) == spec_hash(parse_spec(SPEC))
    placed = {**SPEC, "install": {**SPEC["install"], "nodeSelector": {"pool": "io"}}}
    assert spec_hash(parse_spec(placed)) != spec_hash(parse_spec(SPEC))  # a new placement: a new Job


def test_spec_prepare_may_not_set_variables_that_change_what_code_runs() -> None:
    with pytest.raises(SpecError, match=r"spec\.prepare\.env: .*LD_PRELOAD is not allowed"):
        parse_spec({**SPEC, "prepare": {"env": [{"name": "LD_PRELOAD", "value": "/dscache/objects/x.so"}]}})


# --- HTTP credentials ---------------------------------------------------------------------------------

HTTP_SECRET = {**SPEC, "source": {"http": {"url": "https://data.example/base", "secretRef": {"name": "web"}}}}


def test_an_http_secret_ref_reaches_the_install_container_only() -> None:
    pod = _job(HTTP_SECRET)["spec"]["template"]["spec"]
    [install], [gc] = pod["initContainers"], pod["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in install["env"] if "valueFrom" in e}
    assert refs == {
        "DSCACHE_HTTP_USERNAME": {"name": "web", "key": "username", "optional": True},
        "DSCACHE_HTTP_PASSWORD": {"name": "web", "key": "password", "optional": True},
        "DSCACHE_HTTP_TOKEN": {"name": "web", "key": "token", "optional": True},
    }
    assert not any("valueFrom" in e for e in gc["env"])


USERINFO = "https://robot:s3cr3tpw@data.example/base"
WHAT_TO_DO = (
    "spec.source.http.url: no user:password@ in the URL in a cluster (it would be stored in the spec and the "
    "installer's ConfigMap): put the credentials in a Secret of type kubernetes.io/basic-auth and name it in "
    "spec.source.http.secretRef"
)


def test_the_webhook_refuses_credentials_in_an_http_url_saying_what_to_do() -> None:
    kube = FakeKube()
    admission = Admission(CacheIndex(["ml"]), as_api(kube), Settings())
    new = {
        "apiVersion": "dscache.io/v1alpha1",
        "kind": "DatasetCache",
        "metadata": {"name": "web", "namespace": "ml", "generation": 1},
        "spec": {**SPEC, "source": {"http": {"url": USERINFO}}},
    }
    with pytest.raises(Denied) as err:
        asyncio.run(admission.validate_cache(new, None))
    assert str(err.value) == WHAT_TO_DO
    assert kube.writes == [] and kube.events == []
    ok = {**new, "spec": HTTP_SECRET}
    asyncio.run(admission.validate_cache(ok, None))


def test_the_reconciler_refuses_a_stored_url_with_credentials_and_never_repeats_them() -> None:
    spec = {
        "source": {"http": {"url": USERINFO}},
        "versions": [{"dataType": "objects", "source": "thor", "version": "v1"}],
        "volume": {"claimName": "shared"},
    }
    world = World(claim(), cache(spec=spec))
    world.reconcile()
    status = world.status()
    assert (status["phase"], status["message"]) == ("Failed", WHAT_TO_DO)
    assert condition(status, "Ready") == ("False", "InvalidSpec")
    assert world.created() == []
    written = json.dumps([w.body for w in world.kube.writes]) + json.dumps(
        [e.message for e in world.kube.events]
    )
    assert "s3cr3tpw" not in written and "robot" not in written


def test_an_http_secret_ref_installs_with_no_credential_in_configmap_or_status() -> None:
    spec = {
        "source": {"http": {"url": "https://data.example/base", "secretRef": {"name": "web"}}},
        "versions": [{"dataType": "objects", "source": "thor", "version": "v1"}],
        "volume": {"claimName": "shared"},
    }
    world = World(claim(), cache(spec=spec))
    world.reconcile()
    job = world.install_job()
    configmap = world.kube.obj(f"/api/v1/namespaces/ml/configmaps/{job}")
    assert "secretRef:\n        name: web" in configmap["data"]["datasetcache.yaml"]
    assert world.status()["phase"] == "Installing"


def test_a_changed_service_account_rebinds_the_status_role() -> None:
    spec = {**cache()["spec"], "install": {"serviceAccountName": "first"}}
    world = World(claim(), cache(spec=spec))
    world.reconcile()
    account = names.installer_account_name("objs")
    binding = f"/apis/rbac.authorization.k8s.io/v1/namespaces/ml/rolebindings/{account}"
    assert [s["name"] for s in world.kube.obj(binding)["subjects"]] == ["objs-dscache-installer", "first"]
    world.edit({**spec, "install": {"serviceAccountName": "second"}})
    world.reconcile()
    assert [s["name"] for s in world.kube.obj(binding)["subjects"]] == ["objs-dscache-installer", "second"]
    job = world.job(world.install_job())
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "second"


def test_the_retry_backoff_comes_from_the_settings() -> None:
    world = World(claim(), cache())
    world.reconciler.settings = load({"retry_base_seconds": "5", "retry_max_seconds": "12"}, {})
    world.reconcile()
    waits = []
    for _ in range(3):
        retry_at = dt.datetime.fromisoformat(fail(world)["nextRetryAt"].replace("Z", "+00:00"))
        waits.append(int((retry_at - world.now).total_seconds()))
        world.now = retry_at
        world.reconcile()
    assert waits == [5, 10, 12]


def test_the_crd_refuses_what_spec_prepare_may_not_set_and_types_quantities() -> None:
    from dscache_operator.crd import spec_schema

    prepare = spec_schema()["properties"]["prepare"]["properties"]
    assert prepare["env"]["maxItems"] == 64
    [rule] = prepare["env"]["items"]["x-kubernetes-validations"]
    assert rule["rule"].startswith("!self.name.matches('") and "LD_" in rule["rule"]
    cpu = spec_schema()["properties"]["install"]["properties"]["resources"]["additionalProperties"]
    assert cpu["additionalProperties"]["x-kubernetes-int-or-string"] is True
