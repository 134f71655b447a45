"""Pure decisions about state: what a Job's state means for the DatasetCache's phase and conditions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from dscache.api.status import Condition, ConditionType, DatasetCacheStatus
from dscache.api.status import Phase as PhaseName
from dscache_operator import names

JobState = Literal["active", "succeeded", "failed"]
MAX_MESSAGE = 1024


RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 1800


def now_iso() -> str:
    return format_time(dt.datetime.now(dt.UTC))


def format_time(when: dt.datetime) -> str:
    """RFC 3339 in UTC, whole seconds, as Kubernetes writes times."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> dt.datetime:
    """A Kubernetes timestamp (RFC 3339, `Z` or an offset) as an aware datetime; ValueError if not one."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def retry_delay(failures: int, base: int = RETRY_BASE_SECONDS, cap: int = RETRY_MAX_SECONDS) -> int:
    """Seconds before retrying after `failures` (>= 1) failed installs in a row: base doubling, capped.

    With the defaults: 30, 60, 120, ... 960, then 1800 s (30 min) for every further failure.
    """
    return min(cap, base << min(max(failures, 1) - 1, 32))


def get_job_state(job: dict[str, Any]) -> JobState:
    for cond in job.get("status", {}).get("conditions") or []:
        if cond.get("status") == "True":
            if cond.get("type") == "Complete":
                return "succeeded"
            if cond.get("type") == "Failed":
                return "failed"
    return "active"


def get_job_failure(job: dict[str, Any], pods: list[dict[str, Any]]) -> str:
    """The installer's own error (termination message of the newest failed container), else the Job's."""
    newest = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
    for pod in newest:
        st = pod.get("status", {})
        for cs in [*(st.get("initContainerStatuses") or []), *(st.get("containerStatuses") or [])]:
            term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
            if term and term.get("exitCode", 0) != 0:
                msg = (term.get("message") or "").strip()
                if msg:
                    return msg[-MAX_MESSAGE:]
                return f"container {cs['name']} exited with code {term['exitCode']}"
    for cond in job.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return f"{cond.get('reason', 'Failed')}: {cond.get('message', '')}".strip(": ")
    return "the installer Job failed"


def get_job_seconds(job: dict[str, Any]) -> float | None:
    """Wall time of a finished Job (startTime to completionTime), for the duration histogram."""
    st = job.get("status", {})
    end = st.get("completionTime") or next(
        (c.get("lastTransitionTime") for c in st.get("conditions") or [] if c.get("type") == "Failed"), None
    )
    if not st.get("startTime") or not end:
        return None
    parse = dt.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(st["startTime"].replace("Z", "+00:00"))).total_seconds()


def get_blocker(jobs: list[dict[str, Any]], own: str) -> dict[str, Any] | None:
    """Another active writer Job (installer or cleanup) on the same claim, oldest first, if any."""
    others = [
        j
        for j in jobs
        if j["metadata"]["name"] != own
        and get_job_state(j) == "active"
        and j["metadata"].get("deletionTimestamp") is None
    ]
    return min(others, key=lambda j: j["metadata"].get("creationTimestamp") or "", default=None)


def describe_blocker(job: dict[str, Any], claim: str) -> str:
    labels = job["metadata"].get("labels", {})
    owner = labels.get(names.LABEL_CACHE, "?")
    kind = labels.get(names.LABEL_COMPONENT, "installer")
    return f"waiting for {kind} Job {job['metadata']['name']} (DatasetCache {owner}) on claim {claim}"


@dataclass(frozen=True)
class Phase:
    """A phase with what the Ready condition says about it."""

    name: PhaseName
    reason: str
    message: str


def build_condition(
    kind: ConditionType, status: bool, phase: Phase, generation: int, previous: list[dict[str, Any]]
) -> Condition:
    """A condition per the API conventions; lastTransitionTime moves only when status flips."""
    value: Literal["True", "False"] = "True" if status else "False"
    old = next((c for c in previous if c.get("type") == kind), None)
    since = (
        old["lastTransitionTime"]
        if old and old.get("status") == value and old.get("lastTransitionTime")
        else None
    )
    return Condition(
        type=kind,
        status=value,
        reason=phase.reason,
        message=phase.message[:MAX_MESSAGE],
        observed_generation=generation,
        last_transition_time=since or now_iso(),
    )


def build_status(
    phase: Phase, generation: int, current: dict[str, Any], note: str = "", **extra: Any
) -> dict[str, Any]:
    """The status patch for a phase: phase, message, observedGeneration and both conditions.

    `note` is appended to the Ready condition's message (when a Failed install is retried).
    `extra` are further `DatasetCacheStatus` fields by their wire names (`installJob=...`);
    `nextRetryAt` is removed (JSON merge patch null) unless given.
    """
    previous = current.get("conditions") or []
    told = Phase(phase.name, phase.reason, f"{phase.message} ({note})" if note else phase.message)
    ready = build_condition("Ready", phase.name == "Ready", told, generation, previous)
    installing = build_condition("Installing", phase.name == "Installing", phase, generation, previous)
    status = DatasetCacheStatus.model_validate(
        {
            "phase": phase.name,
            "message": phase.message[:MAX_MESSAGE],
            "observedGeneration": generation,
            "conditions": [ready, installing],
            **extra,
        }
    )
    patch = status.patch()
    patch.setdefault("nextRetryAt", None)
    return patch


def parse_versions_annotation(value: str | None) -> list[str]:
    """Versions from a pod's resolved-versions annotation (comma-separated DT/SRC=VER)."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def get_versions_in_use(pods: list[dict[str, Any]]) -> list[str]:
    """Versions linked by pods that may still run (not Succeeded/Failed): gc must keep them."""
    used: set[str] = set()
    for pod in pods:
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        ann = pod["metadata"].get("annotations") or {}
        used.update(parse_versions_annotation(ann.get(names.ANNOTATION_RESOLVED_VERSIONS)))
    return sorted(used)
