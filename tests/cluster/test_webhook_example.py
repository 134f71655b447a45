"""The hand-written alternative to the webhook: examples/training-job-handwritten.yaml, applied as
is, runs `dscache prepare` as its init container and its workload finds the data (no webhook here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dscache_testbed.fixtures import Testbed

from dscache.api.names import VersionKey
from tests.cluster import operator_fixtures as opf
from tests.factories import version_items
from tests.servers.s3 import S3Env

pytestmark = pytest.mark.cluster
crds = opf.crds
start_operator = opf.start_operator

EXAMPLE = opf.ROOT / "examples" / "training-job-handwritten.yaml"


def test_handwritten_training_job_example_runs_to_completion(
    testbed: Testbed, namespace: str, s3: S3Env, start_operator: opf.OperatorFactory, tmp_path: Path
) -> None:
    remote = opf.Remote(s3, "data")
    keys = (VersionKey("objects", "thor", "v1"), VersionKey("scenes", "ithor", "v1"))
    for key in keys:
        remote.publish(tmp_path / key.data_type, key, {f"{key.data_type}.bin": 20_000})
    opf.create_secret(testbed, namespace, "testing", "testing-secret")
    start_operator()  # installs the cache; no webhook
    spec = {
        "source": opf.s3_source(s3, "data"),
        "versions": version_items("objects/thor=v1", "scenes/ithor=v1"),
        "volume": {"create": {"size": "1Gi"}},
    }
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=opf.datasetcache("molmospaces", spec))
    opf.wait_phase(testbed, namespace, "molmospaces", "Ready")
    testbed.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
    testbed.kubectl(
        "wait", "-n", namespace, "--for=condition=Complete", "job/train-handwritten", "--timeout=90s",
        timeout=100,
    )  # fmt: skip
    [pod] = testbed.kube.get(
        f"/api/v1/namespaces/{namespace}/pods", labelSelector="job-name=train-handwritten"
    )["items"]
    out = testbed.logs(namespace, pod["metadata"]["name"], "train")
    assert "objects.bin" in out and "scenes.bin" in out, out
    prepare = testbed.logs(namespace, pod["metadata"]["name"], "dscache-prepare")
    assert "export DSCACHE_OBJECTS_THOR='/dscache/objects/thor'" in prepare, prepare
