"""Pods at scale on the bed's real node: a Job of 32 labelled pods with hostPath scratch, started at
once, each running the injected slim init container (the Dockerfile's `prepare` target).

Every pod must start with the right bytes, and the version must be read from the shared volume once
for the node: one pod copies it to the node's scratch, the others wait for that copy or find it. The
time from each pod's creation to its workload running is printed (p50/p99), not asserted: it
measures this machine as much as dscache.

The bed has one node (hack/README.md); several nodes are not simulated.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dscache_testbed.fixtures import Testbed

from tests.cluster import operator_fixtures as opf
from tests.cluster import test_webhook as wh
from tests.servers.s3 import S3Env

pytestmark = pytest.mark.cluster
crds = opf.crds
start_operator = opf.start_operator

PODS = 32
# Many files and a few MB, so a copy takes long enough for pods that start meanwhile to meet it.
FILES: dict[str, int] = {
    **{f"shard{i % 8}/part{i}.bin": 64 * 1024 + i for i in range(96)},
    "big.bin": 4 * 1024 * 1024,
    "dir/small.txt": 5,
}
# The workload: a digest of every published file, read through the links, then where they point.
WORKLOAD = f'cd "$DSCACHE_OBJECTS_THOR" && sha256sum {" ".join(sorted(FILES))} && readlink -f .'


@pytest.fixture
def scale_operator(
    testbed: Testbed, namespace: str, start_operator: opf.OperatorFactory
) -> Iterator[opf.Operator]:
    with opf.dev_webhook_operator(
        testbed,
        namespace,
        start_operator,
        "--prepare-wait",
        "300",
        # The bed's node has 2 CPUs: 32 init containers' default requests (100m) would not all fit,
        # and this test times start-up, not the scheduler's queue.
        "--prepare-resources",
        "{}",
        "--scratch-host-path",
        wh._host_path(testbed, namespace, "nvme"),
        wait=lambda: wh.wait_webhook(testbed, namespace),
    ) as op:
        yield op


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _expected_digests(tree: Path) -> list[str]:
    """`sha256sum` lines of the published files, as the workload prints them."""
    return [f"{hashlib.sha256((tree / f).read_bytes()).hexdigest()}  {f}" for f in sorted(FILES)]


def test_job_of_32_pods_on_one_node_reads_the_version_once(
    testbed: Testbed, namespace: str, s3: S3Env, tmp_path: Path, scale_operator: opf.Operator
) -> None:
    host = wh._host_path(testbed, namespace, "nvme")
    remote = opf.Remote(s3, "data")
    remote.publish(tmp_path / "v1", wh.V1, FILES)
    opf.create_secret(testbed, namespace, "testing", "testing-secret")
    scratch = {"mode": "HostPath", "hostPath": {"path": host}}
    wh.apply_cache(testbed, namespace, "objs", wh.spec(s3, {"objects": {"thor": "v1"}}, scratch=scratch))
    opf.wait_phase(testbed, namespace, "objs", "Ready", timeout=180)
    expected = _expected_digests(tmp_path / "v1" / "trees" / wh.V1.rel)

    baseline = _run_job(testbed, namespace, "plain", _template("true", labelled=False))
    labelled = _run_job(testbed, namespace, "scale", _template(WORKLOAD, labelled=True))
    pods = labelled.pods
    assert len({p["spec"]["nodeName"] for p in pods}) == 1

    copies = waited = 0
    for pod in pods:
        name = pod["metadata"]["name"]
        assert [c["image"] for c in pod["spec"]["initContainers"]] == [opf.PREPARE_IMAGE] * 2
        out = testbed.logs(namespace, name, "main").strip().splitlines()
        assert out == [*expected, "/var/lib/dscache/scratch/objects/thor/v1"], name
        prepare_log = testbed.logs(namespace, name, "dscache-prepare")
        assert "warning" not in prepare_log, prepare_log
        copies += len(re.findall(r"objects/thor=v1: copied to scratch \(", prepare_log))
        waited += "copied by another process" in prepare_log
    assert copies == 1  # read from the shared volume once for the node; 31 pods used that copy
    assert sorted(p.name for p in (Path(host) / "objects/thor").iterdir()) == ["v1"]
    assert list((Path(host) / ".dscache/staging").glob("*")) == []
    print(
        f"\n[scale] {PODS} pods on 1 node, hostPath scratch, {len(FILES)} files "
        f"({sum(FILES.values()) / 2**20:.1f} MiB): "
        f"copies from the shared volume: {copies}; pods that waited for that copy: {waited}; "
        f"pods that found it done: {PODS - copies - waited}"
        f"\n{labelled.summary('with dscache (scratch setup + prepare init containers)')}"
        f"\n{labelled.init_phases()}"
        f"\n{baseline.summary('baseline, same Job without dscache')}"
    )


@dataclass
class JobRun:
    """A finished Job's pods, when this test first listed each and first saw it Running or done."""

    pods: list[dict[str, Any]]
    seen: dict[str, float]
    running: dict[str, float]
    total: float

    def summary(self, what: str) -> str:
        # The server's view (1 s resolution): creation -> the workload container started.
        server = [
            _seconds(p["status"]["containerStatuses"][0]["state"]["terminated"]["startedAt"])
            - _seconds(p["metadata"]["creationTimestamp"])
            for p in self.pods
        ]
        # This test's view (polled every ~0.2-0.5 s): first listed -> first seen Running or Succeeded.
        polled = [self.running[n] - self.seen[n] for n in self.seen]
        return (
            f"[scale] {what}: all {len(self.pods)} Succeeded {self.total:.1f}s after the Job's "
            f"creation; creation->running p50/p99: server {_percentile(server, 0.5):.0f}/"
            f"{_percentile(server, 0.99):.0f}s (1 s resolution), polled {_percentile(polled, 0.5):.2f}/"
            f"{_percentile(polled, 0.99):.2f}s (mean {statistics.mean(polled):.2f}s)"
        )

    def init_phases(self) -> str:
        """Where a pod's start-up goes, p50 of each step (server timestamps, 1 s resolution)."""
        steps: dict[str, list[float]] = {}
        for pod in self.pods:
            marks = [_seconds(pod["metadata"]["creationTimestamp"])]
            names = []
            for status in [*pod["status"]["initContainerStatuses"], *pod["status"]["containerStatuses"]]:
                done = status["state"]["terminated"]
                marks += [_seconds(done["startedAt"]), _seconds(done["finishedAt"])]
                names += [f"->{status['name']} start", f"{status['name']} run"]
            for label, a, b in zip(names, marks, marks[1:], strict=False):
                steps.setdefault(label, []).append(b - a)
        return "[scale] p50 per step: " + ", ".join(
            f"{label} {statistics.median(values):.0f}s" for label, values in steps.items()
        )


def _template(script: str, *, labelled: bool) -> dict[str, Any]:
    template = wh.labelled_pod("unused", script)
    del template["metadata"]["name"]
    if not labelled:
        del template["metadata"]["labels"]
    return template


def _run_job(testbed: Testbed, namespace: str, name: str, template: dict[str, Any]) -> JobRun:
    """Create a Job of PODS parallel pods and wait until all have Succeeded (any Failed fails)."""
    job = {
        "metadata": {"name": name},
        "spec": {"parallelism": PODS, "completions": PODS, "backoffLimit": 0, "template": template},
    }
    pods_path = f"/api/v1/namespaces/{namespace}/pods"
    run = JobRun([], {}, {}, 0.0)
    begin = time.monotonic()
    testbed.kube.post(f"/apis/batch/v1/namespaces/{namespace}/jobs", job)

    def all_done() -> bool:
        now = time.monotonic()
        items = testbed.kube.get(pods_path, labelSelector=f"job-name={name}")["items"]
        for pod in items:
            pod_name, phase = pod["metadata"]["name"], pod["status"].get("phase")
            assert phase != "Failed", json.dumps(pod["status"], indent=1)
            run.seen.setdefault(pod_name, now)
            if phase in ("Running", "Succeeded"):
                run.running.setdefault(pod_name, now)
        run.pods = items
        return len(items) == PODS and all(p["status"].get("phase") == "Succeeded" for p in items)

    testbed.wait_for(f"{PODS} pods of Job {name} Succeeded", all_done, timeout=600)
    run.total = time.monotonic() - begin
    return run
