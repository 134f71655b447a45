"""Pure state decisions: Job state, failure messages, the single-writer queue, conditions."""

from __future__ import annotations

from typing import Any

from dscache_operator import names
from dscache_operator.status import (
    Phase,
    build_status,
    describe_blocker,
    get_blocker,
    get_job_failure,
    get_job_seconds,
    get_job_state,
    get_versions_in_use,
)


def _job(
    name: str, *, condition: str | None = None, created: str = "2026-01-01T00:00:00Z", **meta: Any
) -> dict[str, Any]:
    conditions = [
        {"type": condition, "status": "True", "reason": "BackoffLimitExceeded", "message": "too many"}
    ]
    return {
        "metadata": {"name": name, "creationTimestamp": created, "labels": {names.LABEL_CACHE: "a"}, **meta},
        "status": {"conditions": conditions if condition else []},
    }


def test_job_state() -> None:
    assert get_job_state(_job("j")) == "active"
    assert get_job_state(_job("j", condition="Complete")) == "succeeded"
    assert get_job_state(_job("j", condition="Failed")) == "failed"


def test_failure_message_prefers_the_installers_termination_message() -> None:
    pod = {
        "metadata": {"creationTimestamp": "2026-01-01T00:00:05Z"},
        "status": {
            "initContainerStatuses": [
                {
                    "name": "install",
                    "state": {"terminated": {"exitCode": 1, "message": "s3://b: access denied\n"}},
                }
            ]
        },
    }
    older = {
        "metadata": {"creationTimestamp": "2026-01-01T00:00:01Z"},
        "status": {
            "containerStatuses": [{"name": "gc", "state": {"terminated": {"exitCode": 1, "message": "old"}}}]
        },
    }
    job = _job("j", condition="Failed")
    assert get_job_failure(job, [older, pod]) == "s3://b: access denied"
    assert get_job_failure(job, []) == "BackoffLimitExceeded: too many"
    silent = {
        "metadata": {},
        "status": {"containerStatuses": [{"name": "gc", "state": {"terminated": {"exitCode": 3}}}]},
    }
    assert get_job_failure(job, [silent]) == "container gc exited with code 3"


def test_blocker_is_the_oldest_other_active_writer() -> None:
    jobs = [
        _job("mine"),
        _job("done", condition="Complete", created="2025-01-01T00:00:00Z"),
        _job("later", created="2026-01-02T00:00:00Z"),
        _job("first", created="2026-01-01T12:00:00Z"),
        _job("going", deletionTimestamp="2026-01-03T00:00:00Z", created="2020-01-01T00:00:00Z"),
    ]
    blocker = get_blocker(jobs, "mine")
    assert blocker is not None and blocker["metadata"]["name"] == "first"
    assert get_blocker([_job("mine")], "mine") is None
    assert (
        describe_blocker(blocker, "shared")
        == "waiting for installer Job first (DatasetCache a) on claim shared"
    )


def test_conditions_follow_conventions_and_keep_transition_times() -> None:
    installing = build_status(Phase("Installing", "InstallStarted", "go"), 2, {})
    ready_cond = next(c for c in installing["conditions"] if c["type"] == "Ready")
    assert ready_cond["status"] == "False" and ready_cond["observedGeneration"] == 2
    old = {"conditions": [{**ready_cond, "lastTransitionTime": "2000-01-01T00:00:00Z"}]}
    again = build_status(Phase("Queued", "WaitingForWriter", "wait"), 2, old)
    assert (
        next(c for c in again["conditions"] if c["type"] == "Ready")["lastTransitionTime"]
        == "2000-01-01T00:00:00Z"
    )
    ready = build_status(Phase("Ready", "Installed", "done"), 3, old, installJob="j")
    cond = next(c for c in ready["conditions"] if c["type"] == "Ready")
    assert cond["status"] == "True" and cond["lastTransitionTime"] != "2000-01-01T00:00:00Z"
    assert ready["phase"] == "Ready" and ready["observedGeneration"] == 3 and ready["installJob"] == "j"


def test_job_seconds() -> None:
    job = {"status": {"startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:01:30Z"}}
    assert get_job_seconds(job) == 90.0
    assert get_job_seconds({"status": {}}) is None


def test_versions_in_use_come_from_pods_that_may_still_run() -> None:
    def pod(phase: str, value: str) -> dict[str, Any]:
        return {
            "metadata": {"annotations": {names.ANNOTATION_RESOLVED_VERSIONS: value}},
            "status": {"phase": phase},
        }

    pods = [pod("Running", "a/b=1, c/d/e=2"), pod("Pending", "a/b=1"), pod("Succeeded", "x/y=9")]
    assert get_versions_in_use(pods) == ["a/b=1", "c/d/e=2"]
