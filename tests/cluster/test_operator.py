"""The operator end to end on the test bed: real API server, real Jobs running `dscache install`
in the project's image on the bed's node against moto's S3 on loopback."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from dscache_testbed.fixtures import Testbed

from dscache.api.names import VersionKey
from dscache.store.records import read_complete
from tests.cluster import operator_fixtures as opf
from tests.factories import version_items
from tests.servers.s3 import S3Env

pytestmark = pytest.mark.cluster
crds = opf.crds
start_operator = opf.start_operator

V1 = VersionKey("objects", "thor", "v1")
V2 = VersionKey("objects", "thor", "v2")


def _spec(s3: S3Env, versions: dict[str, dict[str, str]], **extra: object) -> dict[str, object]:
    return {
        "source": opf.s3_source(s3, "data"),
        "versions": [
            {"dataType": dt, "source": src, "version": ver}
            for dt, by in versions.items()
            for src, ver in by.items()
        ],
        "volume": {"create": {"size": "1Gi"}},
        **extra,
    }


def test_datasetcache_becomes_ready_with_files_on_the_claim(
    testbed: Testbed, namespace: str, s3: S3Env, start_operator: opf.OperatorFactory, tmp_path: Path
) -> None:
    remote = opf.Remote(s3, "data")
    remote.publish(tmp_path, V1, {"a.bin": 200_000, "dir/b.txt": "hello"})
    opf.create_secret(testbed, namespace, "testing", "testing-secret")
    op = start_operator()
    testbed.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=opf.datasetcache("objs", _spec(s3, {"objects": {"thor": "v1"}})),
    )
    testbed.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", "dsc/objs", "--timeout=120s", timeout=130
    )
    body = opf.get_dsc(testbed, namespace, "objs")
    assert body is not None
    status = body["status"]
    assert status["phase"] == "Ready" and status["observedGeneration"] == body["metadata"]["generation"]
    [installed] = status["installed"]
    assert (installed["dataType"], installed["source"], installed["version"]) == ("objects", "thor", "v1")
    root = opf.claim_dir(testbed, namespace, status["claimName"])
    record = read_complete(root / "objects/thor/v1")
    assert record is not None and record.files >= 2 and record.bytes >= 200_005
    assert (installed["files"], installed["bytes"]) == (record.files, record.bytes)
    assert installed["digest"].startswith("sha256:")  # S3 has no revision; the digest pins the content
    assert status["progress"]["percent"] == "100%" and status["versionsReady"] == "1/1"
    assert (root / "objects/thor/v1/dir/b.txt").read_text() == "hello"
    assert (
        json.loads((root / f".dscache/refs/{namespace}.objs.json").read_text())["versions"][0]["version"]
        == "v1"
    )
    [job] = opf.installer_jobs(testbed, namespace, "objs")
    assert job["metadata"]["ownerReferences"][0]["name"] == "objs"
    printed = testbed.kubectl("get", "dsc", "-n", namespace, "objs").stdout
    assert "Ready" in printed and "100%" in printed and "1/1" in printed, printed
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "Installed" and ready["observedGeneration"] == body["metadata"]["generation"]
    [row] = printed_rows(testbed, namespace, "objs")
    assert "REASON" not in row and "MESSAGE" not in row  # priority 1: only at -o wide
    assert (row["READY"], row["PHASE"], row["VERSIONS"]) == ("True", "Ready", "1/1")
    [wide] = printed_rows(testbed, namespace, "objs", "-o", "wide")
    assert (wide["READY"], wide["REASON"], wide["MESSAGE"]) == ("True", "Installed", ready["message"])
    events = testbed.kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    assert {"InstallStarted", "InstallSucceeded"} <= {e["reason"] for e in events}
    assert 'dscache_installs_total{result="succeeded"} 1.0' in op.metrics()


def printed_rows(testbed: Testbed, namespace: str, name: str, *flags: str) -> list[dict[str, str]]:
    """`kubectl get datasetcache NAME` as the API server's printer columns: one dict per row, by header.

    Cells are cut at the header's column starts (values such as SIZE and MESSAGE contain spaces)."""
    lines = testbed.kubectl("get", "datasetcache", "-n", namespace, name, *flags).stdout.splitlines()
    header = lines[0]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    names = [header[a:b].strip() for a, b in bounds]
    return [{n: line[a:b].strip() for n, (a, b) in zip(names, bounds, strict=True)} for line in lines[1:]]


def _apply(testbed: Testbed, namespace: str, name: str, spec: dict[str, object]) -> None:
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=opf.datasetcache(name, spec))


def _events(testbed: Testbed, namespace: str) -> list[dict[str, object]]:
    return list(testbed.kube.get(f"/api/v1/namespaces/{namespace}/events")["items"])


def _shared_claim(testbed: Testbed, namespace: str, name: str = "shared") -> None:
    testbed.kube.post(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        {
            "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )


def test_update_installs_only_the_new_versions_and_gc_spares_versions_in_use(
    testbed: Testbed, namespace: str, s3: S3Env, start_operator: opf.OperatorFactory, tmp_path: Path
) -> None:
    remote = opf.Remote(s3, "data")
    table = VersionKey("tables", "kitchen", "v1")
    for key in (V1, V2, table):
        remote.publish(tmp_path, key, {"f.bin": 100_000})
    opf.create_secret(testbed, namespace, "testing", "testing-secret")
    start_operator()
    retention = {"keep": 0}
    _apply(testbed, namespace, "objs", _spec(s3, {"objects": {"thor": "v1"}}, retention=retention))
    first = opf.wait_phase(testbed, namespace, "objs", "Ready")
    root = opf.claim_dir(testbed, namespace, first["status"]["claimName"])
    # A running workload pod still links v1 (the webhook of issue 6 writes this annotation).
    testbed.kube.post(
        f"/api/v1/namespaces/{namespace}/pods",
        {
            "metadata": {
                "name": "trainer",
                "labels": {"dscache.io/cache": "objs"},
                "annotations": {"dscache.io/resolved-versions": "objects/thor=v1"},
            },
            "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]},
        },
    )
    s3.server.log.clear()
    _apply(
        testbed,
        namespace,
        "objs",
        _spec(s3, {"objects": {"thor": "v2"}, "tables": {"kitchen": "v1"}}, retention=retention),
    )
    body = opf.wait_phase(testbed, namespace, "objs", "Ready", generation=2)
    assert {(v["dataType"], v["version"]) for v in body["status"]["installed"]} == {
        ("objects", "v2"),
        ("tables", "v1"),
    }
    assert body["status"]["versionsReady"] == "2/2"
    fetched = {r.path for r in s3.server.log.all()}
    assert not any("/objects/thor/v1/" in p for p in fetched), "an installed version was downloaded again"
    assert any("/objects/thor/v2/" in p for p in fetched)
    ref = json.loads((root / f".dscache/refs/{namespace}.objs.json").read_text())
    assert sorted(e["version"] for e in ref["versions"]) == ["v1", "v2"]  # tables/kitchen=v1, objects/thor=v2
    assert (root / "objects/thor/v1").is_dir(), "gc removed a version a running pod uses"
    [job] = opf.installer_jobs(testbed, namespace, "objs")  # the superseded Job is gone
    assert job["metadata"]["name"] == body["status"]["installJob"]
    gc_args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert gc_args[-2:] == ["--in-use", "objects/thor=v1"]


def test_second_resource_on_a_claim_is_queued_until_the_first_finishes(
    testbed: Testbed, namespace: str, s3: S3Env, start_operator: opf.OperatorFactory, tmp_path: Path
) -> None:
    remote = opf.Remote(s3, "data")
    table = VersionKey("tables", "kitchen", "v1")
    remote.publish(tmp_path, V1, {"f.bin": 100_000})
    remote.publish(tmp_path, table, {"t.bin": 1000})
    opf.create_secret(testbed, namespace, "testing", "testing-secret")
    _shared_claim(testbed, namespace)
    s3.server.faults.delay(4.0, times=None, path="*/objects/thor/v1/*.tar.zst")  # a slow first install
    start_operator()
    volume = {"claimName": "shared"}
    _apply(testbed, namespace, "first", {**_spec(s3, {"objects": {"thor": "v1"}}), "volume": volume})
    installing = opf.wait_phase(testbed, namespace, "first", "Installing")

    def live_progress() -> dict[str, object] | None:
        progress = (opf.get_dsc(testbed, namespace, "first") or {}).get("status", {}).get("progress", {})
        return progress if progress.get("bytesTotal") and progress.get("percent") != "100%" else None

    progress = testbed.wait_for("progress reported while installing", live_progress, timeout=30)
    assert progress["archivesTotal"] >= 1, progress
    _apply(testbed, namespace, "second", {**_spec(s3, {"tables": {"kitchen": "v1"}}), "volume": volume})
    queued = opf.wait_phase(testbed, namespace, "second", "Queued")
    message = queued["status"]["message"]
    assert installing["status"]["installJob"] in message and "first" in message and "shared" in message
    assert opf.installer_jobs(testbed, namespace, "second") == []
    opf.wait_phase(testbed, namespace, "first", "Ready")
    second = opf.wait_phase(testbed, namespace, "second", "Ready")
    assert [v["version"] for v in second["status"]["installed"]] == ["v1"]
    root = opf.claim_dir(testbed, namespace, "shared")
    assert (root / "objects/thor/v1").is_dir() and (root / "tables/kitchen/v1").is_dir()


def _moto_auth(s3: S3Env, requests_before_auth: str) -> None:
    req = urllib.request.Request(
        f"{s3.server.direct_endpoint}/moto-api/reset-auth",
        data=requests_before_auth.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def test_wrong_credentials_fail_with_a_clear_message_and_no_secret_anywhere(
    testbed: Testbed, namespace: str, s3: S3Env, start_operator: opf.OperatorFactory, tmp_path: Path
) -> None:
    remote = opf.Remote(s3, "data")
    remote.publish(tmp_path, V1, {"f.bin": 1000})
    secret_value = "Sup3rSecretValueNobodyMaySee"
    opf.create_secret(testbed, namespace, "AKIAWRONGWRONGWRONG1", secret_value)
    op = start_operator()
    _moto_auth(s3, "0")  # moto now checks access keys (it knows none)
    try:
        spec = _spec(s3, {"objects": {"thor": "v1"}}, install={"backoffLimit": 0})
        _apply(testbed, namespace, "objs", spec)
        body = opf.wait_phase(testbed, namespace, "objs", "Failed")
    finally:
        _moto_auth(s3, "inf")
    message = body["status"]["message"]
    assert "access denied (InvalidAccessKeyId); check the credentials" in message, message
    ready = next(c for c in body["status"]["conditions"] if c["type"] == "Ready")
    [wide] = printed_rows(testbed, namespace, "objs", "-o", "wide")
    assert (wide["READY"], wide["PHASE"], wide["REASON"]) == ("False", "Failed", "InstallFailed"), wide
    assert wide["MESSAGE"] == ready["message"] and secret_value not in wide["MESSAGE"]
    assert ready["status"] == "False" and ready["reason"] == "InstallFailed"
    events = _events(testbed, namespace)
    assert any(e["reason"] == "InstallFailed" for e in events)
    job = body["status"]["installJob"]
    pods = testbed.kube.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"job-name={job}")["items"]
    pod_logs = "".join(testbed.logs(namespace, pod["metadata"]["name"]) for pod in pods)
    for where, text in (
        ("status", json.dumps(body["status"])),
        ("events", json.dumps(events)),
        ("operator log", op.log_path.read_text()),
        ("installer log", pod_logs),
    ):
        assert secret_value not in text, f"secret leaked into {where}"
    # Fixing the Secret and deleting the failed Job retries the install.
    testbed.kube.delete(f"/api/v1/namespaces/{namespace}/secrets/s3-creds")
    opf.create_secret(testbed, namespace, "testing", "testing-secret")
    testbed.kubectl("delete", "-n", namespace, f"job/{job}")
    opf.wait_phase(testbed, namespace, "objs", "Ready")


def test_invalid_specs_are_rejected_by_the_api_server(testbed: Testbed, namespace: str, crds: None) -> None:
    good = {
        "source": {"http": {"url": "http://127.0.0.1:1/data"}},
        "versions": version_items("objects/thor=v1"),
        "volume": {"claimName": "c"},
    }
    cases: dict[str, tuple[dict[str, object], str]] = {
        "two-sources": (
            {**good, "source": {"http": {"url": "http://x"}, "s3": {"bucket": "b"}}},
            "exactly one of s3, gcs, azure, huggingFace, http, file",
        ),
        "no-source": ({**good, "source": {}}, "exactly one of s3, gcs, azure, huggingFace, http, file"),
        "unsafe-version": (
            {**good, "versions": version_items("objects/thor=../etc")},
            "spec.versions[0].version: Invalid value",
        ),
        "unsafe-data-type": (
            {**good, "versions": version_items("objects/thor=v1", ".hidden/thor=v1")},
            "spec.versions[1].dataType: Invalid value",
        ),
        "unsafe-source": (
            {**good, "versions": version_items("objects/thor/../x=v1")},
            "spec.versions[0].source: Invalid value",
        ),
        "same-data-type-and-source": (
            {**good, "versions": version_items("objects/thor=v1", "scenes/ithor=v1", "objects/thor=v2")},
            'spec.versions[2]: Duplicate value: {"dataType":"objects","source":"thor"}',
        ),
        "env-name": (
            {**good, "versions": version_items("objects/thor=v1", envName={"objects/thor": "LD_PRELOAD"})},
            "spec.versions[0].envName: Invalid value",
        ),
        "link": (
            {**good, "versions": version_items("objects/thor=v1", link={"objects/thor": "perFile"})},
            'spec.versions[0].link: Unsupported value: "perFile": supported values: "Directory", "PerFile"',
        ),
        "old-layout": (
            {**good, "layout": "files"},
            'spec.layout: Unsupported value: "files": supported values: "Archives", "Files"',
        ),
        "old-scratch-mode": (
            {**good, "scratch": {"mode": "emptyDir"}},
            'spec.scratch.mode: Unsupported value: "emptyDir": '
            'supported values: "None", "EmptyDir", "HostPath"',
        ),
        "old-versions-map": (
            {**good, "versions": {"objects": {"thor": "v1"}}},
            'unknown field "spec.versions.objects"',  # kubectl's strict field validation, before the schema
        ),
        "old-env-names": ({**good, "envNames": {"objects/thor": "X"}}, 'unknown field "spec.envNames"'),
        "no-volume": ({k: v for k, v in good.items() if k != "volume"}, "spec.volume"),
        "both-volumes": (
            {**good, "volume": {"claimName": "c", "create": {"size": "1Gi"}}},
            "claimName, create",
        ),
        "bad-size": ({**good, "volume": {"create": {"size": "lots"}}}, "spec.volume.create.size"),
        "parallelism": ({**good, "install": {"parallelism": 0}}, "spec.install.parallelism"),
    }
    for name, (spec, expected) in cases.items():
        proc = testbed.kubectl(
            "apply", "-n", namespace, "-f", "-", input=opf.datasetcache(name, spec), check=False
        )
        assert proc.returncode != 0, f"{name} was accepted"
        assert expected in proc.stderr, (name, proc.stderr)
    _apply(testbed, namespace, "fine", good)
    for example in sorted((opf.ROOT / "examples").glob("datasetcache-*.yaml")):
        testbed.kubectl("apply", "-n", namespace, "--dry-run=server", "-f", str(example))


def test_operator_restarted_mid_install_resumes_without_a_second_job(
    testbed: Testbed, namespace: str, s3: S3Env, start_operator: opf.OperatorFactory, tmp_path: Path
) -> None:
    remote = opf.Remote(s3, "data")
    remote.publish(tmp_path, V1, {"f.bin": 100_000})
    opf.create_secret(testbed, namespace, "testing", "testing-secret")
    s3.server.faults.delay(3.0, times=None, path="*/objects/thor/v1/*.tar.zst")
    op = start_operator()
    _apply(testbed, namespace, "objs", _spec(s3, {"objects": {"thor": "v1"}}))
    opf.wait_phase(testbed, namespace, "objs", "Installing")
    op.stop(signal.SIGKILL)
    restarted = start_operator()
    opf.wait_phase(testbed, namespace, "objs", "Ready")
    [job] = opf.installer_jobs(testbed, namespace, "objs")
    assert job["status"].get("succeeded") == 1 and not job["status"].get("failed")
    assert not any(r.get("message", "").startswith("started ") for r in restarted.log_records())
    succeeded = [e for e in _events(testbed, namespace) if e["reason"] == "InstallSucceeded"]
    assert len(succeeded) == 1 and succeeded[0].get("count", 1) == 1, succeeded


def test_two_operators_only_one_acts(
    testbed: Testbed, namespace: str, s3: S3Env, start_operator: opf.OperatorFactory, tmp_path: Path
) -> None:
    remote = opf.Remote(s3, "data")
    remote.publish(tmp_path, V1, {"f.bin": 1000})
    opf.create_secret(testbed, namespace, "testing", "testing-secret")
    older = start_operator(name="older")
    testbed.wait_for("older operator up", older.healthy)
    newer = start_operator(name="newer")  # a higher priority (later start): it takes over
    testbed.wait_for(
        "older operator paused",
        lambda: any("Pausing operations" in r.get("message", "") for r in older.log_records()),
    )
    _apply(testbed, namespace, "objs", _spec(s3, {"objects": {"thor": "v1"}}))
    opf.wait_phase(testbed, namespace, "objs", "Ready")

    def acted(op: opf.Operator) -> bool:
        return any(r.get("message", "").startswith("started objs-install-") for r in op.log_records())

    assert acted(newer) and not acted(older)
    assert len(opf.installer_jobs(testbed, namespace, "objs")) == 1


def test_delete_with_retain_keeps_the_data(
    testbed: Testbed, namespace: str, s3: S3Env, start_operator: opf.OperatorFactory, tmp_path: Path
) -> None:
    opf.Remote(s3, "data").publish(tmp_path, V1, {"f.bin": 1000})
    opf.create_secret(testbed, namespace, "testing", "testing-secret")
    start_operator()
    _apply(testbed, namespace, "objs", _spec(s3, {"objects": {"thor": "v1"}}))
    claim = opf.wait_phase(testbed, namespace, "objs", "Ready")["status"]["claimName"]
    root = opf.claim_dir(testbed, namespace, claim)
    testbed.kubectl("delete", "-n", namespace, "dsc/objs", "--timeout=60s")
    pvc_path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}"
    pvc = testbed.get(pvc_path)
    assert pvc is not None and not pvc["metadata"].get("ownerReferences")
    time.sleep(2)  # the garbage collector had its chance: the orphaned claim must stay
    assert testbed.get(pvc_path) is not None
    assert (root / "objects/thor/v1/f.bin").is_file()


def test_delete_with_delete_removes_only_versions_no_other_resource_uses(
    testbed: Testbed, namespace: str, s3: S3Env, start_operator: opf.OperatorFactory, tmp_path: Path
) -> None:
    remote = opf.Remote(s3, "data")
    table = VersionKey("tables", "kitchen", "v1")
    remote.publish(tmp_path, V1, {"f.bin": 1000})
    remote.publish(tmp_path, table, {"t.bin": 1000})
    opf.create_secret(testbed, namespace, "testing", "testing-secret")
    _shared_claim(testbed, namespace)
    start_operator()
    volume = {"claimName": "shared"}
    doomed = _spec(
        s3, {"objects": {"thor": "v1"}, "tables": {"kitchen": "v1"}}, retention={"onDelete": "Delete"}
    )
    _apply(testbed, namespace, "doomed", {**doomed, "volume": volume})
    opf.wait_phase(testbed, namespace, "doomed", "Ready")
    _apply(testbed, namespace, "keeper", {**_spec(s3, {"objects": {"thor": "v1"}}), "volume": volume})
    opf.wait_phase(testbed, namespace, "keeper", "Ready")
    root = opf.claim_dir(testbed, namespace, "shared")
    testbed.kubectl("delete", "-n", namespace, "dsc/doomed", "--timeout=90s", timeout=100)
    assert not (root / "tables/kitchen/v1").exists(), "a version only the deleted resource used was kept"
    assert (root / "objects/thor/v1/f.bin").is_file(), "a version another resource uses was removed"
    assert not (root / f".dscache/refs/{namespace}.doomed.json").exists()
    assert (root / f".dscache/refs/{namespace}.keeper.json").exists()
    assert {"CleanupStarted", "CleanupSucceeded"} <= {e["reason"] for e in _events(testbed, namespace)}
