"""Recovery without imperative steps, on the test bed: a Failed install (its HTTP server answers
nothing) becomes Ready by itself once the server is back, after the backoff, and at once on a new
`dscache.io/reconcile-requested-at` annotation; nobody deletes a Job."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from dscache_testbed.fixtures import Testbed

from dscache.api.names import VersionKey
from tests.cluster import operator_fixtures as opf
from tests.factories import make_tree, publish_archives
from tests.servers.files import FileServer

pytestmark = pytest.mark.cluster
crds = opf.crds
start_operator = opf.start_operator

V1 = VersionKey("objects", "thor", "v1")
V2 = VersionKey("objects", "thor", "v2")


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _spec(server: FileServer, version: str) -> dict[str, object]:
    return {
        "source": {"http": {"url": server.url}},
        "versions": [{"dataType": "objects", "source": "thor", "version": version}],
        "volume": {"create": {"size": "1Gi"}},
        "install": {"backoffLimit": 0},
    }


def test_a_failed_install_recovers_by_itself_and_at_once_on_the_annotation(
    testbed: Testbed,
    namespace: str,
    http_server: FileServer,
    start_operator: opf.OperatorFactory,
    tmp_path: Path,
) -> None:
    for key in (V1, V2):
        publish_archives(make_tree(tmp_path / key.version, {"a.bin": 50_000}), http_server.root, key, 16_384)
    http_server.faults.status(404, times=None, method=None)  # the server is down: it has nothing
    # A backoff of 60 s (the default is 30): the annotation's retry below must come well before it,
    # even on a loaded machine where deleting and recreating the Job takes many seconds.
    start_operator("--retry-base-seconds", "60")
    testbed.kubectl(
        "apply", "-n", namespace, "-f", "-", input=opf.datasetcache("objs", _spec(http_server, "v1"))
    )
    failed = opf.wait_phase(testbed, namespace, "objs", "Failed")["status"]
    assert failed["failedAttempts"] == 1
    first_job = failed["installJob"]
    ready = next(c for c in failed["conditions"] if c["type"] == "Ready")
    assert f"next retry at {failed['nextRetryAt']}" in ready["message"]

    http_server.faults.clear()  # the server is back: the retry after the backoff (60 s) installs
    body = opf.wait_phase(testbed, namespace, "objs", "Ready", timeout=150)
    assert body["status"]["installJob"] == first_job and body["status"]["failedAttempts"] == 0
    [job] = opf.installer_jobs(testbed, namespace, "objs")
    assert _when(job["metadata"]["creationTimestamp"]) >= _when(failed["nextRetryAt"])

    http_server.faults.status(404, times=None, method=None)
    testbed.kubectl(
        "apply", "-n", namespace, "-f", "-", input=opf.datasetcache("objs", _spec(http_server, "v2"))
    )
    failed = opf.wait_phase(testbed, namespace, "objs", "Failed", generation=2)["status"]
    assert failed["failedAttempts"] == 1  # a new spec starts counting afresh
    http_server.faults.clear()
    asked = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    testbed.kubectl(
        "annotate", "-n", namespace, "--overwrite", "dsc/objs", f"dscache.io/reconcile-requested-at={asked}"
    )
    body = opf.wait_phase(testbed, namespace, "objs", "Ready", timeout=150, generation=2)
    assert body["status"]["lastHandledReconcileAt"] == asked
    [job] = opf.installer_jobs(testbed, namespace, "objs")
    assert _when(job["metadata"]["creationTimestamp"]) < _when(failed["nextRetryAt"])  # not the backoff
