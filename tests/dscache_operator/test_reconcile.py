"""The reconciler against an in-memory API (no test bed): every phase and transition, as the objects
it creates, patches and deletes, the status it writes, the Events it posts and the metrics it counts."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import re
from collections.abc import Coroutine
from typing import Any, Literal

import kopf
import pytest
from prometheus_client import REGISTRY

from dscache_operator.kubeapi import dsc_path
from dscache_operator.reconcile import Reconciler
from dscache_operator.settings import Settings
from dscache_operator.status import get_job_state as get_state
from tests.dscache_operator.fakekube import Event, FakeKube, Write, as_api
from tests.factories import version_items

NS = "ml"
UID = "0b5d9c1e-aaaa-bbbb-cccc-000000000001"
SPEC: dict[str, Any] = {
    "source": {"s3": {"bucket": "b", "secretRef": {"name": "creds"}}},
    "versions": version_items("objects/thor=v1"),
    "volume": {"claimName": "shared"},
}
JOB_NAME = re.compile(r"^objs-install-[0-9a-f]{10}$")
JOBS = f"/apis/batch/v1/namespaces/{NS}/jobs"
CONFIGMAPS = f"/api/v1/namespaces/{NS}/configmaps"
PVCS = f"/api/v1/namespaces/{NS}/persistentvolumeclaims"
# Series by how /metrics prints them: name, labels.
COUNTERS: dict[str, tuple[str, dict[str, str]]] = {
    "dscache_installs_started_total": ("dscache_installs_started_total", {}),
    'dscache_installs_total{result="succeeded"}': ("dscache_installs_total", {"result": "succeeded"}),
    'dscache_installs_total{result="failed"}': ("dscache_installs_total", {"result": "failed"}),
    "dscache_installed_bytes_total": ("dscache_installed_bytes_total", {}),
    "dscache_install_duration_seconds_count": ("dscache_install_duration_seconds_count", {}),
    "dscache_queued_resources": ("dscache_queued_resources", {}),
}


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def cache(name: str = "objs", spec: dict[str, Any] | None = None, uid: str = UID) -> dict[str, Any]:
    return {
        "apiVersion": "dscache.io/v1alpha1",
        "kind": "DatasetCache",
        "metadata": {"name": name, "namespace": NS, "uid": uid, "generation": 1},
        "spec": copy.deepcopy(spec if spec is not None else SPEC),
    }


def claim(name: str = "shared") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": NS}}


def pod(
    name: str, labels: dict[str, str], phase: str = "Running", versions: str = "", **status: Any
) -> dict[str, Any]:
    """A pod; `versions`: the resolved-versions annotation the webhook writes on workload pods."""
    meta: dict[str, Any] = {"name": name, "namespace": NS, "labels": labels}
    if versions:
        meta["annotations"] = {"dscache.io/resolved-versions": versions}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": {"phase": phase, **status}}


class World:
    """A FakeKube with some objects and the Reconciler acting on it."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.kube = FakeKube()
        for obj in objects:
            self.kube.put(obj)
        self.now = dt.datetime(2026, 1, 1, 3, 0, 0, tzinfo=dt.UTC)
        self.reconciler = Reconciler(as_api(self.kube), Settings(), self.kube.post_event, lambda: self.now)

    def wait(self, seconds: int) -> None:
        self.now += dt.timedelta(seconds=seconds)

    def annotate(self, value: str, name: str = "objs") -> None:
        """A user's `kubectl annotate --overwrite datasetcache objs dscache.io/reconcile-requested-at=...`."""
        body = self.body(name)
        body["metadata"].setdefault("annotations", {})["dscache.io/reconcile-requested-at"] = value
        self.kube.put(body)

    def body(self, name: str = "objs") -> dict[str, Any]:
        return self.kube.obj(dsc_path(NS, name))

    def status(self, name: str = "objs") -> dict[str, Any]:
        return dict(self.body(name).get("status") or {})

    def reconcile(self, name: str = "objs") -> None:
        run(self.reconciler.reconcile(self.body(name)))

    def finalize(self, name: str = "objs") -> None:
        body = self.body(name)
        body["metadata"]["deletionTimestamp"] = "2026-01-01T02:00:00Z"
        run(self.reconciler.finalize(body))

    def edit(self, spec: dict[str, Any], name: str = "objs") -> None:
        """A user's spec change: the API server bumps the generation."""
        body = self.body(name)
        body["spec"] = copy.deepcopy(spec)
        body["metadata"]["generation"] += 1
        self.kube.put(body)

    def job(self, name: str) -> dict[str, Any]:
        return self.kube.obj(f"{JOBS}/{name}")

    def finish(self, job_name: str, outcome: Literal["Complete", "Failed"]) -> dict[str, Any]:
        """What the Job controller does when the Job's pod ends; returns the Job as kopf sees it."""
        job = self.job(job_name)
        job["status"] = {
            "startTime": "2026-01-01T01:00:00Z",
            "conditions": [
                {
                    "type": outcome,
                    "status": "True",
                    "lastTransitionTime": "2026-01-01T01:02:00Z",
                    "reason": "BackoffLimitExceeded" if outcome == "Failed" else "",
                    "message": "Job has reached the specified backoff limit" if outcome == "Failed" else "",
                }
            ],
        }
        if outcome == "Complete":
            job["status"]["completionTime"] = "2026-01-01T01:02:00Z"
        self.kube.put(job)
        return job

    def job_changed(self, job: dict[str, Any], deleted: bool = False) -> None:
        run(self.reconciler.job_changed(job, deleted=deleted))

    def report_installed(self, name: str = "objs") -> None:
        """What the installer writes into the status (its own RBAC) before it exits."""
        path = dsc_path(NS, name)
        self.kube.objects[path].setdefault("status", {}).update(
            installed=[{"dataType": "objects", "source": "thor", "version": "v1", "files": 3, "bytes": 1536}],
            size="1.5 KiB",
        )

    def created(self) -> list[tuple[str, str]]:
        return [(w.body["kind"], w.body["metadata"]["name"]) for w in self.kube.writes_of("create") if w.body]

    def deleted(self) -> list[str]:
        return [w.path for w in self.kube.writes_of("delete")]

    def status_writes(self) -> list[Write]:
        return [w for w in self.kube.writes if w.verb == "patch" and w.path.endswith("/status")]

    def install_job(self, name: str = "objs") -> str:
        job_name = str(self.status(name)["installJob"])
        return job_name


def metrics() -> dict[str, float]:
    return {key: REGISTRY.get_sample_value(*series) or 0.0 for key, series in COUNTERS.items()}


def moved(before: dict[str, float]) -> dict[str, float]:
    after = metrics()
    return {name: after[name] - before[name] for name in COUNTERS if after[name] != before[name]}


def condition(status: dict[str, Any], kind: str) -> tuple[str, str]:
    found = next(c for c in status["conditions"] if c["type"] == kind)
    return found["status"], found["reason"]


def started(world: World) -> str:
    """A world where objs' installer Job was just created; its name."""
    world.reconcile()
    return world.install_job()


# --- Installing -------------------------------------------------------------------------------------


def test_first_reconcile_starts_one_installer_with_its_rbac_and_manifest() -> None:
    world = World(
        claim(),
        cache(),
        pod("train-1", {"dscache.io/cache": "objs"}, versions="objects/thor=v0"),
        pod("done", {"dscache.io/cache": "objs"}, "Succeeded", versions="objects/thor=old"),
    )
    before = metrics()
    world.reconcile()

    status = world.status()
    job_name = status["installJob"]
    assert JOB_NAME.match(job_name)
    assert world.created() == [
        ("ServiceAccount", "objs-dscache-installer"),
        ("Role", "objs-dscache-installer"),
        ("RoleBinding", "objs-dscache-installer"),
        ("ConfigMap", job_name),
        ("Job", job_name),
    ]
    job = world.job(job_name)
    assert job["metadata"]["ownerReferences"][0]["uid"] == UID
    assert job["metadata"]["labels"]["dscache.io/claim"] == "shared"
    assert job["metadata"]["annotations"]["dscache.io/generation"] == "1"
    [gc] = job["spec"]["template"]["spec"]["containers"]
    assert gc["args"][-2:] == ["--in-use", "objects/thor=v0"]  # a running pod's version; not done's
    assert status["phase"] == "Installing"
    assert status["message"] == f"installer Job {job_name} installs 1 version(s)"
    assert status["observedGeneration"] == 1 and status["claimName"] == "shared"
    assert status["progress"] == {
        "bytesDone": 0, "bytesTotal": 0, "itemsDone": 0, "itemsTotal": 0, "archivesDone": 0,
        "archivesTotal": 0, "percent": "0%",
    }  # fmt: skip
    assert condition(status, "Ready") == ("False", "InstallStarted")
    assert condition(status, "Installing") == ("True", "InstallStarted")
    assert world.kube.events == [
        Event("ml/objs", "Normal", "InstallStarted", f"installer Job {job_name} installs 1 version(s)")
    ]
    assert moved(before) == {"dscache_installs_started_total": 1}


def test_reconciling_again_while_the_job_runs_writes_nothing() -> None:
    world = World(claim(), cache())
    started(world)
    writes, events = len(world.kube.writes), len(world.kube.events)
    world.reconcile()  # a resume after an operator restart, a timer, a duplicate event
    assert len(world.kube.writes) == writes and len(world.kube.events) == events


def test_a_running_job_restores_a_lost_installing_status() -> None:
    world = World(claim(), cache())
    job_name = started(world)
    body = world.body()
    del body["status"]
    world.kube.put(body)
    world.reconcile()
    status = world.status()
    assert (status["phase"], status["installJob"]) == ("Installing", job_name)
    assert status["message"] == f"installer Job {job_name} is running"
    assert condition(status, "Installing") == ("True", "InstallRunning")
    assert world.created()[-1] == ("Job", job_name)  # created once, by the first reconcile


def test_a_created_volume_is_an_owned_claim() -> None:
    spec = {**SPEC, "volume": {"create": {"size": "100Gi", "storageClassName": "rwx"}}}
    world = World(cache(spec=spec))
    world.reconcile()
    assert world.created()[0] == ("PersistentVolumeClaim", "objs-dscache")
    pvc = world.kube.obj(f"{PVCS}/objs-dscache")
    assert pvc["spec"]["resources"] == {"requests": {"storage": "100Gi"}}
    assert pvc["metadata"]["ownerReferences"][0]["uid"] == UID
    status = world.status()
    assert (status["phase"], status["claimName"]) == ("Installing", "objs-dscache")


# --- Pending ----------------------------------------------------------------------------------------


def test_pending_while_the_named_claim_is_missing_then_installing() -> None:
    world = World(cache())
    with pytest.raises(kopf.TemporaryError, match="PersistentVolumeClaim shared does not exist") as err:
        world.reconcile()
    assert err.value.delay == 10
    status = world.status()
    assert (status["phase"], status["claimName"]) == ("Pending", "shared")
    assert status["message"] == "PersistentVolumeClaim shared does not exist"
    assert condition(status, "Ready") == ("False", "ClaimNotFound")
    assert world.created() == []

    with pytest.raises(kopf.TemporaryError):
        world.reconcile()  # kopf's retry: the same message is not written again
    assert len(world.status_writes()) == 1

    world.kube.put(claim())
    world.reconcile()
    assert world.status()["phase"] == "Installing"


# --- Invalid specs ----------------------------------------------------------------------------------


def test_an_invalid_spec_fails_without_creating_anything() -> None:
    """E.g. one stored in the shape before v1alpha1's reshape (the API server does not revalidate it)."""
    world = World(claim(), cache(spec={**SPEC, "envNames": {"objects/thor": "X"}}))
    world.reconcile()
    status = world.status()
    assert status["phase"] == "Failed"
    assert condition(status, "Ready") == ("False", "InvalidSpec")
    assert status["message"] == "spec.envNames is now spec.versions[].envName on each version"
    assert world.created() == [] and world.kube.events == []


def test_a_file_source_stored_while_the_webhook_was_off_gets_no_installer() -> None:
    """Aimed at the installer's own token: no Job, ConfigMap, RBAC or claim; only the refusal."""
    token = {"file": {"path": "/var/run/secrets/kubernetes.io/serviceaccount"}}
    world = World(claim(), cache(spec={**SPEC, "source": token}))
    world.reconcile()
    status = world.status()
    assert status["phase"] == "Failed"
    assert condition(status, "Ready") == ("False", "InvalidSpec")
    assert status["message"].startswith("spec.source.file is for laptops and CI")
    assert world.created() == [] and world.deleted() == [] and world.kube.events == []
    assert [w.path for w in world.kube.writes] == [f"{dsc_path(NS, 'objs')}/status"]


def test_host_scratch_the_admin_does_not_allow_gets_no_installer() -> None:
    scratch = {"mode": "HostPath", "hostPath": {"path": "/etc"}}
    world = World(claim(), cache(spec={**SPEC, "scratch": scratch}))
    world.reconcile()
    status = world.status()
    assert (status["phase"], condition(status, "Ready")) == ("Failed", ("False", "InvalidSpec"))
    assert status["message"].startswith("spec.scratch.hostPath.path: hostPath scratch is not allowed")
    assert world.created() == []


def test_a_spec_without_volume_fails_in_a_cluster() -> None:
    world = World(cache(spec={k: v for k, v in SPEC.items() if k != "volume"}))
    world.reconcile()
    status = world.status()
    assert (status["phase"], status["message"]) == ("Failed", "spec.volume is required in a cluster")
    assert condition(status, "Ready") == ("False", "InvalidSpec")
    assert world.created() == []


# --- Ready ------------------------------------------------------------------------------------------


def test_ready_when_the_installer_completes() -> None:
    world = World(claim(), cache())
    job_name = started(world)
    world.report_installed()
    before = metrics()
    world.job_changed(world.finish(job_name, "Complete"))

    status = world.status()
    assert (status["phase"], status["installJob"], status["observedGeneration"]) == ("Ready", job_name, 1)
    assert status["message"] == "1 version(s) installed (1.5 KiB)"
    assert condition(status, "Ready") == ("True", "Installed")
    assert condition(status, "Installing") == ("False", "Installed")
    assert status["installed"][0]["version"] == "v1"  # the installer's report is kept
    assert world.kube.events[-1] == Event("ml/objs", "Normal", "InstallSucceeded", status["message"])
    assert moved(before) == {
        'dscache_installs_total{result="succeeded"}': 1,
        "dscache_installed_bytes_total": 1536,
        "dscache_install_duration_seconds_count": 1,
    }

    writes, events = len(world.kube.writes), len(world.kube.events)
    world.job_changed(world.job(job_name))  # another event on the finished Job
    world.reconcile()  # Ready for this generation: not even a Job lookup writes anything
    assert len(world.kube.writes) == writes and len(world.kube.events) == events


def test_an_equivalent_spec_only_bumps_observed_generation() -> None:
    world = World(claim(), cache())
    job_name = started(world)
    world.report_installed()
    world.job_changed(world.finish(job_name, "Complete"))
    creates, events, before = len(world.created()), len(world.kube.events), metrics()

    world.edit({**SPEC, "layout": "Archives", "retention": {"keep": 2}})  # the defaults, spelled out
    world.reconcile()

    status = world.status()
    assert (status["phase"], status["installJob"], status["observedGeneration"]) == ("Ready", job_name, 2)
    assert condition(status, "Ready") == ("True", "Installed")
    assert len(world.created()) == creates and world.deleted() == []  # no new Job
    assert len(world.kube.events) == events and moved(before) == {}  # not a second install


# --- Failed and retry -------------------------------------------------------------------------------


def test_failed_with_the_installers_own_message_then_retried_by_deleting_the_job() -> None:
    world = World(claim(), cache())
    job_name = started(world)
    world.kube.put(
        pod(
            f"{job_name}-x1",
            {"job-name": job_name, "dscache.io/cache": "objs", "dscache.io/component": "installer"},
            "Failed",
            initContainerStatuses=[
                {
                    "name": "install",
                    "state": {
                        "terminated": {"exitCode": 3, "message": "s3://b/objects/thor/v1: 403 AccessDenied\n"}
                    },
                }
            ],
        )
    )
    before = metrics()
    failed = world.finish(job_name, "Failed")
    world.job_changed(failed)

    status = world.status()
    assert (status["phase"], status["installJob"]) == ("Failed", job_name)
    assert status["message"] == "s3://b/objects/thor/v1: 403 AccessDenied"
    assert condition(status, "Ready") == ("False", "InstallFailed")
    assert world.kube.events[-1] == Event("ml/objs", "Warning", "InstallFailed", status["message"])
    assert moved(before) == {
        'dscache_installs_total{result="failed"}': 1,
        "dscache_install_duration_seconds_count": 1,
    }

    writes = len(world.kube.writes)
    world.job_changed(failed)  # the same failure seen again: nothing new
    world.reconcile()
    assert len(world.kube.writes) == writes

    run(world.kube.delete(f"{JOBS}/{job_name}"))  # the user's `kubectl delete job`
    world.job_changed(failed, deleted=True)
    assert world.created()[-1] == ("Job", job_name)  # the same spec: the same Job again
    status = world.status()
    assert (status["phase"], status["installJob"]) == ("Installing", job_name)
    assert condition(status, "Installing") == ("True", "InstallStarted")


def test_a_failed_job_without_a_container_message_reports_the_jobs_condition() -> None:
    world = World(claim(), cache())
    job_name = started(world)
    world.job_changed(world.finish(job_name, "Failed"))
    assert world.status()["message"] == "BackoffLimitExceeded: Job has reached the specified backoff limit"


def fail(world: World) -> dict[str, Any]:
    """The current installer Job fails and the operator sees it; the status after."""
    world.job_changed(world.finish(world.install_job(), "Failed"))
    return world.status()


def ready_message(status: dict[str, Any]) -> str:
    return str(next(c for c in status["conditions"] if c["type"] == "Ready")["message"])


def test_a_failed_install_is_retried_by_itself_after_the_backoff() -> None:
    world = World(claim(), cache())
    job_name = started(world)
    status = fail(world)
    assert (status["phase"], status["failedAttempts"], status["nextRetryAt"]) == (
        "Failed",
        1,
        "2026-01-01T03:00:30Z",
    )
    assert ready_message(status) == (
        "BackoffLimitExceeded: Job has reached the specified backoff limit (1 failed attempt(s); next retry"
        " at 2026-01-01T03:00:30Z, or at once on a new dscache.io/reconcile-requested-at annotation)"
    )
    assert status["message"] == "BackoffLimitExceeded: Job has reached the specified backoff limit"

    writes = len(world.kube.writes)
    world.wait(29)
    world.reconcile()  # kopf's timer on Failed resources, before the time: nothing
    assert len(world.kube.writes) == writes

    world.wait(1)
    world.reconcile()  # at nextRetryAt: the failed Job goes, the same Job starts again
    assert world.deleted() == [f"{JOBS}/{job_name}"]  # nothing deleted by hand
    assert world.created()[-1] == ("Job", job_name)
    status = world.status()
    assert (status["phase"], status["failedAttempts"]) == ("Installing", 1)
    assert "nextRetryAt" not in status
    assert get_state(world.job(job_name)) == "active"

    status = fail(world)  # the second failure waits twice as long
    assert (status["failedAttempts"], status["nextRetryAt"]) == (2, "2026-01-01T03:01:30Z")

    world.wait(60)
    world.reconcile()
    world.job_changed(world.finish(job_name, "Complete"))
    status = world.status()
    assert (status["phase"], status["failedAttempts"]) == ("Ready", 0)
    assert "nextRetryAt" not in status


def test_the_backoff_doubles_up_to_thirty_minutes() -> None:
    world = World(claim(), cache())
    started(world)
    waits = []
    for _ in range(8):
        status = fail(world)
        retry_at = dt.datetime.fromisoformat(status["nextRetryAt"].replace("Z", "+00:00"))
        waits.append(int((retry_at - world.now).total_seconds()))
        world.now = retry_at
        world.reconcile()
    assert waits == [30, 60, 120, 240, 480, 960, 1800, 1800]
    assert world.status()["failedAttempts"] == 8


def test_the_reconcile_requested_at_annotation_retries_at_once_and_only_once() -> None:
    world = World(claim(), cache())
    job_name = started(world)
    fail(world)
    world.annotate("2026-01-01T03:00:05Z")
    world.reconcile()  # kopf's update handler on the annotation
    status = world.status()
    assert (status["phase"], status["lastHandledReconcileAt"]) == ("Installing", "2026-01-01T03:00:05Z")
    assert world.created()[-1] == ("Job", job_name)

    fail(world)  # the same value again is no new request: the backoff (60 s) applies
    writes = len(world.kube.writes)
    world.reconcile()
    assert len(world.kube.writes) == writes
    world.annotate("2026-01-01T03:00:09Z")
    world.reconcile()
    assert world.status()["phase"] == "Installing"


def test_an_annotation_set_while_installing_does_not_skip_the_next_backoff() -> None:
    world = World(claim(), cache())
    world.annotate("2026-01-01T02:59:00Z")
    started(world)
    assert world.status()["lastHandledReconcileAt"] == "2026-01-01T02:59:00Z"
    fail(world)
    writes = len(world.kube.writes)
    world.reconcile()
    assert len(world.kube.writes) == writes


def test_a_spec_change_resets_the_failure_count() -> None:
    world = World(claim(), cache())
    started(world)
    fail(world)
    world.wait(30)
    world.reconcile()
    assert fail(world)["failedAttempts"] == 2
    world.edit({**SPEC, "versions": version_items("objects/thor=v2")})
    world.reconcile()
    status = world.status()
    assert (status["phase"], status["failedAttempts"]) == ("Installing", 0)
    status = fail(world)
    assert (status["failedAttempts"], status["nextRetryAt"]) == (1, "2026-01-01T03:01:00Z")


def test_an_invalid_spec_has_no_retry_time() -> None:
    world = World(claim(), cache())
    started(world)
    fail(world)
    world.edit({**SPEC, "versions": version_items("objects/thor=../x")})
    world.reconcile()
    status = world.status()
    assert (status["phase"], condition(status, "Ready")) == ("Failed", ("False", "InvalidSpec"))
    assert "nextRetryAt" not in status


# --- Queued -----------------------------------------------------------------------------------------


def test_queued_behind_another_install_on_the_claim_then_woken_when_it_ends() -> None:
    world = World(claim(), cache("a", uid="a-1"), cache("b", uid="b-1"))
    world.reconcile("a")
    a_job = world.install_job("a")
    before = metrics()
    world.reconcile("b")

    status = world.status("b")
    assert (status["phase"], status["claimName"]) == ("Queued", "shared")
    assert status["message"] == f"waiting for installer Job {a_job} (DatasetCache a) on claim shared"
    assert condition(status, "Ready") == ("False", "WaitingForWriter")
    assert "installJob" not in status
    assert [n for n in world.kube.kinds("Job")] == [a_job]
    assert not any(n.startswith("b-install-") for n in world.kube.kinds("ConfigMap"))
    assert moved(before) == {"dscache_queued_resources": 1}

    writes = len(world.status_writes())
    world.reconcile("b")  # the queue timer: still blocked, same message, no write
    assert len(world.status_writes()) == writes

    world.job_changed(world.finish(a_job, "Complete"))  # wakes b
    status = world.status("b")
    assert status["phase"] == "Installing" and status["installJob"].startswith("b-install-")
    assert world.kube.kinds("Job") == [a_job, status["installJob"]]
    assert world.status("a")["phase"] == "Ready"
    assert moved(before) == {
        "dscache_installs_started_total": 1,
        'dscache_installs_total{result="succeeded"}': 1,
        "dscache_install_duration_seconds_count": 1,
    }


def test_a_queued_resource_creates_nothing_until_its_turn() -> None:
    """Hundreds may queue on one claim for hours: no RBAC, manifest or volume work before their turn."""
    world = World(claim(), cache("a", uid="a-1"), cache("b", uid="b-1"))
    world.reconcile("a")
    writes = len(world.kube.writes)
    world.reconcile("b")
    assert [(w.verb, w.path) for w in world.kube.writes[writes:]] == [
        ("patch", dsc_path(NS, "b") + "/status")
    ]
    world.job_changed(world.finish(world.install_job("a"), "Complete"))
    assert ("ServiceAccount", "b-dscache-installer") in world.created()


def test_the_queue_poll_lists_a_claims_writers_once_for_all_its_queued_resources() -> None:
    """The fallback for a missed Job event: N queued resources on a claim cost one request per poll."""
    now = [1000.0]
    queued = [f"q{i}" for i in range(5)]
    world = World(claim(), cache("a", uid="a-1"), *(cache(q, uid=f"{q}-1") for q in queued))
    world.reconciler = Reconciler(
        as_api(world.kube), Settings(), world.kube.post_event, monotonic=lambda: now[0]
    )
    for name in ["a", *queued]:
        world.reconcile(name)
    requests = len(world.kube.requests)
    for name in queued:
        run(world.reconciler.poll_queued(world.body(name)))
    assert world.kube.requests[requests:] == [("list", JOBS)]
    assert {world.status(q)["phase"] for q in queued} == {"Queued"}

    world.finish(world.install_job("a"), "Complete")  # its event is lost
    now[0] += 5
    for name in queued:
        run(world.reconciler.poll_queued(world.body(name)))
    phases = [world.status(q)["phase"] for q in queued]
    assert phases == ["Installing", "Queued", "Queued", "Queued", "Queued"]
    assert world.status("q1")["message"].startswith(f"waiting for installer Job {world.install_job('q0')}")


def test_queued_behind_a_cleanup_job_and_woken_when_it_ends() -> None:
    cleanup = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "old-cleanup-12345678",
            "namespace": NS,
            "labels": {
                "dscache.io/cache": "old",
                "dscache.io/component": "cleanup",
                "dscache.io/claim": "shared",
            },
            "annotations": {"dscache.io/claim": "shared"},
        },
    }
    world = World(claim(), cache(), cleanup)
    world.reconcile()
    status = world.status()
    assert status["phase"] == "Queued"
    assert (
        status["message"] == "waiting for cleanup Job old-cleanup-12345678 (DatasetCache old) on claim shared"
    )
    world.job_changed(world.finish("old-cleanup-12345678", "Complete"))
    assert world.status()["phase"] == "Installing"


def test_deleting_a_waiting_job_wakes_the_queue_too() -> None:
    world = World(claim(), cache("a", uid="a-1"), cache("b", uid="b-1"))
    world.reconcile("a")
    a_job = world.job(world.install_job("a"))
    world.reconcile("b")
    run(world.kube.delete(f"{JOBS}/{a_job['metadata']['name']}"))
    world.job_changed(a_job, deleted=True)
    assert world.status("b")["phase"] == "Installing"


# --- Spec changes -----------------------------------------------------------------------------------


def test_a_new_spec_replaces_the_running_installer() -> None:
    world = World(claim(), cache())
    old = started(world)
    world.edit({**SPEC, "versions": version_items("objects/thor=v2")})
    world.reconcile()

    status = world.status()
    new = status["installJob"]
    assert JOB_NAME.match(new) and new != old
    assert world.deleted() == [f"{JOBS}/{old}", f"{CONFIGMAPS}/{old}"]
    assert world.kube.kinds("Job") == [new]
    assert (status["phase"], status["observedGeneration"]) == ("Installing", 2)
    assert world.job(new)["metadata"]["annotations"]["dscache.io/generation"] == "2"


def test_a_job_that_ends_after_the_spec_changed_reports_the_generation_it_served() -> None:
    world = World(claim(), cache())
    job_name = started(world)
    world.edit({**SPEC, "versions": version_items("objects/thor=v2")})  # not reconciled yet
    world.job_changed(world.finish(job_name, "Complete"))
    status = world.status()
    assert (status["phase"], status["observedGeneration"]) == ("Ready", 1)  # Ready, but for generation 1
    world.reconcile()
    status = world.status()
    assert (status["phase"], status["observedGeneration"]) == ("Installing", 2)
    assert status["installJob"] != job_name


def test_events_of_other_jobs_and_of_deleted_caches_are_ignored() -> None:
    world = World(claim(), cache())
    job_name = started(world)
    stray = {
        **world.job(job_name),
        "metadata": {**world.job(job_name)["metadata"], "name": "objs-install-0000000000"},
    }
    writes = len(world.kube.writes)
    world.job_changed(stray)  # a superseded Job of the resource, still running
    assert len(world.kube.writes) == writes

    body = world.body()
    body["metadata"]["deletionTimestamp"] = "2026-01-01T02:00:00Z"
    world.kube.put(body)
    world.job_changed(world.finish(job_name, "Complete"))
    world.reconcile()
    assert len(world.kube.writes) == writes and world.status()["phase"] == "Installing"


def test_a_resource_gone_before_its_turn_is_left_alone() -> None:
    world = World(claim(), cache())
    body = world.body()
    run(world.kube.delete(dsc_path(NS, "objs")))
    run(world.reconciler.reconcile(body))
    assert world.kube.writes == [Write("delete", dsc_path(NS, "objs"), None)]


# --- Deletion ---------------------------------------------------------------------------------------


def test_retain_on_a_named_claim_leaves_everything() -> None:
    world = World(claim(), cache(spec={**SPEC, "retention": {"onDelete": "Retain"}}))
    job_name = started(world)
    writes = len(world.kube.writes)
    world.finalize()
    assert len(world.kube.writes) == writes and world.kube.events[-1].reason == "InstallStarted"
    assert world.kube.kinds("Job") == [job_name]  # the owner's deletion collects it, not us


def test_retain_orphans_a_created_claim() -> None:
    spec = {**SPEC, "volume": {"create": {"size": "1Gi"}}, "retention": {"onDelete": "Retain"}}
    world = World(cache(spec=spec))
    started(world)
    world.finalize()
    assert world.kube.writes[-1] == Write(
        "patch", f"{PVCS}/objs-dscache", {"metadata": {"ownerReferences": None}}
    )
    assert "ownerReferences" not in world.kube.obj(f"{PVCS}/objs-dscache")["metadata"]


@pytest.mark.parametrize("outcome", ["Complete", "Failed"])
def test_delete_runs_the_cleanup_job_before_the_finalizer_goes(
    outcome: Literal["Complete", "Failed"],
) -> None:
    spec = {**SPEC, "retention": {"onDelete": "Delete"}}
    workload = pod("train-1", {"dscache.io/cache": "other"}, versions="objects/thor=v1")
    world = World(claim(), cache(spec=spec), workload)
    installer = started(world)

    with pytest.raises(kopf.TemporaryError, match="waiting for cleanup Job objs-cleanup-0b5d9c1e") as err:
        world.finalize()
    assert err.value.delay == 2
    assert world.deleted() == [f"{JOBS}/{installer}", f"{CONFIGMAPS}/{installer}"]
    assert world.created()[-1] == ("Job", "objs-cleanup-0b5d9c1e")
    cleanup = world.job("objs-cleanup-0b5d9c1e")
    assert cleanup["metadata"]["labels"]["dscache.io/component"] == "cleanup"
    [release] = cleanup["spec"]["template"]["spec"]["containers"]
    assert release["args"] == [
        "release", "--cache", "/cache", "--ref", "ml.objs", "--json", "--in-use", "objects/thor=v1",
    ]  # fmt: skip
    assert world.kube.events[-1] == Event(
        "ml/objs",
        "Normal",
        "CleanupStarted",
        "cleanup Job objs-cleanup-0b5d9c1e removes this cache's versions",
    )

    creates = len(world.created())
    with pytest.raises(kopf.TemporaryError):
        world.finalize()  # still running: wait, create nothing
    assert len(world.created()) == creates

    if outcome == "Failed":
        world.kube.put(
            pod(
                "objs-cleanup-0b5d9c1e-x",
                {"job-name": "objs-cleanup-0b5d9c1e"},
                "Failed",
                containerStatuses=[
                    {"name": "release", "state": {"terminated": {"exitCode": 1, "message": "disk"}}}
                ],
            )
        )
    world.finish("objs-cleanup-0b5d9c1e", outcome)
    world.finalize()  # returns: kopf removes the finalizer
    expected = (
        Event("ml/objs", "Warning", "CleanupFailed", "disk")
        if outcome == "Failed"
        else Event("ml/objs", "Normal", "CleanupSucceeded", "versions of ml.objs released")
    )
    assert world.kube.events[-1] == expected


def test_deleting_an_invalid_resource_releases_it_at_once() -> None:
    world = World(
        claim(), cache(spec={**SPEC, "envNames": {"objects/thor": "X"}, "retention": {"onDelete": "Delete"}})
    )
    world.finalize()
    assert world.kube.writes == [] and world.kube.events == []
