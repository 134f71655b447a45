"""The DatasetCache status: one typed model for the operator, the installer and the CRD's schema.

The operator writes phase, message, conditions and the names of the claim and the installer Job; the
installer Job writes `progress` while it runs and `installed`/`size`/`versionsReady` when done (both by
merge patch, each only its own fields: build a model with the fields to set and send `patch()`). The
CRD's `.status` schema is generated from these models (`dscache_operator.crd`).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from dscache.api.durations import format_duration

Phase = Literal["Pending", "Queued", "Installing", "Ready", "Failed"]
PHASES: tuple[str, ...] = get_args(Phase)
ConditionType = Literal["Ready", "Installing"]


def _count(description: str) -> Any:
    return Field(None, ge=0, description=description, json_schema_extra={"format": "int64"})


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def patch(self) -> dict[str, Any]:
        """The fields that are not None, camelCase, for a JSON merge patch of `.status`."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# metav1.Condition's validation, as Kubernetes generates it for its own types (apimachinery
# pkg/apis/meta/v1/types.go): https://github.com/kubernetes/apimachinery
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class Condition(_Model):
    """A condition with the full `metav1.Condition` schema (every field but observedGeneration required)."""

    type: str = Field(
        description="Condition type: Ready (versions installed and the ref switched) or Installing.",
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        None,
        ge=0,
        description="The .metadata.generation the condition was set for.",
        json_schema_extra={"format": "int64"},
    )
    last_transition_time: str = Field(
        description="When status last changed (not when reason or message did).",
        json_schema_extra={"format": "date-time"},
    )
    reason: str = Field(
        description="CamelCase reason for the condition's last transition, e.g. Installed, InstallFailed.",
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
    )
    message: str = Field(description="Human-readable detail; may be empty.", max_length=32768)


class InstalledVersion(_Model):
    """A version published on the volume and pointed at by this resource's ref."""

    data_type: str = Field(description="Data type.")
    source: str = Field(description="Source.")
    version: str = Field(description="Version.")
    revision: str | None = Field(
        None, description="Resolved remote revision (S3 ETag set digest, HF commit) if the remote has one."
    )
    digest: str | None = Field(
        None, description="sha256 over the installed archives' names, sizes and digests."
    )
    files: int | None = _count("Number of files in the version.")
    bytes: int | None = _count("Bytes of the version on the volume.")


class Progress(_Model):
    """Progress of the running install, reported by the installer (throttled)."""

    bytes_done: int | None = _count("Bytes transferred so far (including resumed work).")
    bytes_total: int | None = _count("Bytes to transfer.")
    items_done: int | None = _count("Items done: archives (layout Archives) or files (layout Files).")
    items_total: int | None = _count("Items to install: archives (layout Archives) or files (layout Files).")
    archives_done: int | None = _count(
        "Deprecated: the same as itemsDone (its earlier name, kept for readers)."
    )
    archives_total: int | None = _count(
        "Deprecated: the same as itemsTotal (its earlier name, kept for readers)."
    )
    percent: str | None = Field(None, description="bytesDone/bytesTotal as a percentage, for kubectl get.")
    bytes_per_second: int | None = _count(
        "Transfer rate since the previous progress report, bytes per second (absent until known)."
    )
    eta: str | None = Field(
        None, description="Estimated time left at that rate, e.g. 1h02m or 45s (absent until known)."
    )

    @classmethod
    def of(
        cls,
        bytes_done: int,
        bytes_total: int,
        items_done: int,
        items_total: int,
        bytes_per_second: float | None = None,
    ) -> Progress:
        """Pure: the progress for these counts; `percent` is 100% when there is nothing to transfer.

        With a rate (bytes/s), also `bytesPerSecond` and, when the rate is above 0, `eta`.
        """
        percent = 100.0 if bytes_total == 0 else min(100.0, 100.0 * bytes_done / bytes_total)
        rate = None if bytes_per_second is None else max(0, int(bytes_per_second))
        left = max(0, bytes_total - bytes_done)
        return cls(
            bytes_done=bytes_done,
            bytes_total=bytes_total,
            items_done=items_done,
            items_total=items_total,
            archives_done=items_done,
            archives_total=items_total,
            percent=f"{percent:.0f}%",
            bytes_per_second=rate,
            eta=format_duration(left / rate) if rate else None,
        )


class DatasetCacheStatus(_Model):
    """Observed state of the DatasetCache."""

    phase: Phase | None = Field(None, description="Pending, Queued, Installing, Ready or Failed.")
    message: str | None = Field(None, description="What is happening or what failed, without secrets.")
    observed_generation: int | None = _count("The .metadata.generation the phase was computed for.")
    conditions: list[Condition] | None = Field(
        None,
        description="Ready (and Installing) conditions; `kubectl wait --for=condition=Ready`.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    installed: list[InstalledVersion] | None = Field(
        None, description="Versions installed for the current spec, with resolved revisions and sizes."
    )
    progress: Progress | None = None
    size: str | None = Field(None, description="Total size of the installed versions, human-readable.")
    versions_ready: str | None = Field(
        None, description="Installed versions out of those in the spec, e.g. 2/2."
    )
    claim_name: str | None = Field(None, description="The PVC holding the cache.")
    install_job: str | None = Field(None, description="The installer Job for the current spec.")
    failed_attempts: int | None = _count(
        "Installs of the current spec that failed in a row (0 after a success or a spec change)."
    )
    next_retry_at: str | None = Field(
        None,
        description="When a Failed install is retried (capped exponential backoff); absent otherwise.",
        json_schema_extra={"format": "date-time"},
    )
    last_handled_reconcile_at: str | None = Field(
        None,
        description="The dscache.io/reconcile-requested-at annotation value last acted on (as Flux does).",
    )
