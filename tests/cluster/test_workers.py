"""`spec.install.workers: 3` on the test bed: the install runs as an Indexed Job of three pods into
the shared volume; one worker's container is killed mid-way, the Job retries that index, and the
version is published once, with the right bytes, and no archive is fetched twice but the one the
killed worker was transferring."""

from __future__ import annotations

import collections
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from dscache_testbed.fixtures import Testbed

from dscache.api.names import VersionKey
from dscache.api.spec import parse_spec
from dscache.cli.app import main
from dscache_operator.volume import get_claim_name
from tests.cluster import operator_fixtures as opf
from tests.factories import dataset_snapshot, make_tree, publish_archives, tree_snapshot
from tests.servers.files import FileServer

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]  # the retry waits a lease (60 s) for the lock
crds = opf.crds
start_operator = opf.start_operator

V1 = VersionKey("objects", "thor", "v1")
WORKERS = 3


def _pods(testbed: Testbed, namespace: str, job: str) -> list[dict[str, Any]]:
    path = f"/api/v1/namespaces/{namespace}/pods"
    return list(testbed.kube.get(path, labelSelector=f"batch.kubernetes.io/job-name={job}")["items"])


def _running_install(pod: dict[str, Any]) -> str | None:
    """The container id of the pod's install container while it runs, else None."""
    for status in pod.get("status", {}).get("initContainerStatuses") or []:
        if status["name"] == "install" and "running" in (status.get("state") or {}):
            return str(status["containerID"])
    return None


def _share_done(cache: Path, index: int) -> int:
    try:
        return int(
            json.loads((cache / ".dscache" / "team" / f"{index}.progress.json").read_text())["itemsDone"]
        )
    except (OSError, ValueError, KeyError):
        return 0


def test_three_workers_one_killed_mid_way_publish_once(
    testbed: Testbed,
    namespace: str,
    http_server: FileServer,
    start_operator: opf.OperatorFactory,
    tmp_path: Path,
) -> None:
    tree = make_tree(
        tmp_path / "tree", {f"d{i}/f{j}.bin": 3000 + 7 * i * j for i in range(24) for j in range(4)}
    )
    publish_archives(tree, http_server.root, V1, archive_size=16_384)
    archives = sorted(p for p in os.listdir(http_server.root / V1.rel) if p.endswith(".tar.zst"))
    assert len(archives) >= 18, "each worker needs several archives for a kill mid-way"
    http_server.faults.delay(1.5, times=None, path="*.tar.zst")  # about 10 s of transfers per worker
    start_operator()
    spec = {
        "source": {"http": {"url": http_server.url}},
        "versions": [{"dataType": "objects", "source": "thor", "version": "v1"}],
        "volume": {"create": {"size": "1Gi"}},
        "install": {"workers": WORKERS, "parallelism": 1, "backoffLimit": 2},
    }
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=opf.datasetcache("objs", spec))
    [job] = testbed.wait_for("the installer Job", lambda: opf.installer_jobs(testbed, namespace, "objs"))
    job_name = job["metadata"]["name"]
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == WORKERS
    cache = opf.claim_dir(testbed, namespace, get_claim_name("objs", parse_spec(spec)))

    def victim() -> tuple[str, str] | None:  # worker 1, once it has an archive done and more to go
        for pod in _pods(testbed, namespace, job_name):
            index = pod["metadata"]["annotations"].get("batch.kubernetes.io/job-completion-index")
            container = _running_install(pod)
            if index == "1" and container and _share_done(cache, 1) >= 1:
                return pod["metadata"]["name"], container
        return None

    pod_name, container = testbed.wait_for("worker 1 mid-way", victim, timeout=240)
    pid = testbed.container_pid(container)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    done_at_kill = _share_done(cache, 1)

    opf.wait_phase(testbed, namespace, "objs", "Ready", timeout=420)
    pods = _pods(testbed, namespace, job_name)
    indexes = collections.Counter(
        p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods
    )
    assert indexes["0"] == indexes["2"] == 1 and indexes["1"] >= 2, indexes  # only the killed one retried
    killed = next(p for p in pods if p["metadata"]["name"] == pod_name)
    assert killed["status"]["phase"] == "Failed"
    [finished] = testbed.kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{job_name}")["status"][
        "conditions"
    ][-1:]
    assert finished["type"] == "Complete"

    version = cache / V1.rel
    assert dataset_snapshot(version) == tree_snapshot(tree)
    assert main(["verify", "--cache", str(cache)]) == 0
    assert not (cache / ".dscache" / "team.json").exists()
    gets = collections.Counter(r.path for r in http_server.log.find("*.tar.zst", method="GET"))
    assert sorted(p.rsplit("/", 1)[1] for p in gets) == archives, "every archive fetched"
    twice = [path for path, n in gets.items() if n > 1]
    assert len(twice) <= 1, f"fetched more than once: {twice} (only the interrupted archive may be)"
    assert done_at_kill >= 1
