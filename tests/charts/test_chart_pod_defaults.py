"""Chart values `installer.*` and `initContainer.env*` reach the operator and the pods it builds."""

from __future__ import annotations

from pathlib import Path

from dscache.api.podsettings import EnvFromSource, EnvVar, ObjectSource
from dscache.api.spec import parse_spec
from dscache_operator.installer import build_installer_job
from dscache_operator.podpatch import desired_pod
from tests.charts.chart import render
from tests.charts.test_chart_templates import _operator_settings

VALUES = """
installer:
  serviceAccountName: s3-reader
  nodeSelector: {pool: io}
  tolerations: [{key: io, operator: Exists, effect: NoSchedule}]
  affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: []}}
  priorityClassName: batch-low
  imagePullSecrets: [{name: regcred}]
  env: [{name: HTTPS_PROXY, value: "http://proxy:3128"}]
  envFrom: [{configMapRef: {name: ca-bundle}}]
  podLabels: {team: ml}
  podAnnotations: {cost-center: "42"}
  resources: {requests: {cpu: 2, memory: 1Gi}}
  statusInterval: 30
  retryBaseSeconds: 10
  retryMaxSeconds: 600
initContainer:
  env: [{name: DSCACHE_READ_TIMEOUT, value: "5"}]
  envFrom: [{configMapRef: {name: tuning}}]
"""


def test_installer_defaults_from_the_chart_reach_installer_pods(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(VALUES)
    ours = _operator_settings(render(files=(values,)))
    assert (ours.retry_base_seconds, ours.retry_max_seconds, ours.status_interval) == (10, 600, 30.0)
    assert ours.prepare_env == (EnvVar(name="DSCACHE_READ_TIMEOUT", value="5"),)
    assert ours.prepare_env_from == (EnvFromSource(config_map_ref=ObjectSource(name="tuning")),)
    body = {"metadata": {"name": "objs", "namespace": "ml", "uid": "0b5d9c1e-0001", "generation": 1}}
    spec = parse_spec(
        {
            "source": {"s3": {"bucket": "b"}},
            "versions": [{"dataType": "o", "source": "t", "version": "v1"}],
            "volume": {"claimName": "c"},
        }
    )
    template = build_installer_job(
        body, spec, ours, job_name="objs-install", claim="c", digest="d", in_use=[]
    )["spec"]["template"]
    pod = template["spec"]
    assert pod["serviceAccountName"] == "s3-reader"
    assert pod["nodeSelector"] == {"pool": "io"}
    assert pod["tolerations"] == [{"key": "io", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["affinity"] == {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    assert pod["priorityClassName"] == "batch-low" and pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert template["metadata"]["labels"]["team"] == "ml"
    assert template["metadata"]["annotations"] == {"cost-center": "42"}
    [install] = pod["initContainers"]
    assert {"name": "HTTPS_PROXY", "value": "http://proxy:3128"} in install["env"]
    assert {"name": "DSCACHE_STATUS_INTERVAL", "value": "30"} in install["env"]
    assert install["envFrom"] == [{"configMapRef": {"name": "ca-bundle"}}]
    assert install["resources"] == {"requests": {"cpu": "2", "memory": "1Gi"}}
    workload = {"metadata": {"labels": {"dscache.io/cache": "objs"}}, "spec": {"containers": [{"name": "m"}]}}
    [init] = desired_pod(workload, body, spec, ours)["spec"]["initContainers"]
    assert init["env"] == [{"name": "DSCACHE_READ_TIMEOUT", "value": "5"}]
    assert init["envFrom"] == [{"configMapRef": {"name": "tuning"}}]


def test_by_default_the_chart_sets_no_installer_placement() -> None:
    ours = _operator_settings(render())
    assert ours.installer.model_dump(exclude_none=True) == {}
    assert (ours.retry_base_seconds, ours.retry_max_seconds, ours.status_interval) == (30, 1800, None)
    assert ours.prepare_env is None and ours.prepare_env_from is None
