"""The typed status: what the installer and the operator merge-patch into `.status`."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dscache.api.status import Condition, DatasetCacheStatus, InstalledVersion, Progress


def test_progress_of_counts() -> None:
    assert Progress.of(1, 3, 0, 2).patch() == {
        "bytesDone": 1,
        "bytesTotal": 3,
        "itemsDone": 0,
        "itemsTotal": 2,
        "archivesDone": 0,
        "archivesTotal": 2,
        "percent": "33%",
    }
    assert Progress.of(0, 0, 0, 0).percent == "100%"
    assert Progress.of(5, 4, 1, 1).percent == "100%"


def test_patch_has_wire_names_and_only_the_fields_given() -> None:
    status = DatasetCacheStatus(
        installed=[InstalledVersion(data_type="objects", source="thor", version="v1", bytes=10)],
        versions_ready="1/1",
        conditions=[
            Condition(
                type="Ready",
                status="True",
                observed_generation=3,
                last_transition_time="2026-01-01T00:00:00Z",
                reason="Installed",
                message="",
            )
        ],
    )
    assert status.patch() == {
        "installed": [{"dataType": "objects", "source": "thor", "version": "v1", "bytes": 10}],
        "versionsReady": "1/1",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "observedGeneration": 3,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "reason": "Installed",
                "message": "",
            }
        ],
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reason": None}, "reason"),
        ({"reason": "install failed"}, "reason"),
        ({"lastTransitionTime": None}, "lastTransitionTime"),
        ({"message": None}, "message"),
        ({"type": "Not Ready"}, "type"),
    ],
)
def test_a_condition_follows_metav1_condition(change: dict[str, object], field: str) -> None:
    good = {"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    doc = {**good, "reason": "InstallFailed", "message": "m", **change}
    with pytest.raises(ValidationError) as err:
        Condition.model_validate({k: v for k, v in doc.items() if v is not None})
    assert [e["loc"] for e in err.value.errors()] == [(field,)]


def test_wire_names_are_accepted() -> None:
    status = DatasetCacheStatus.model_validate(
        {"phase": "Queued", "claimName": "c", "installJob": "j", "progress": {"percent": "0%"}}
    )
    assert (status.phase, status.claim_name, status.install_job) == ("Queued", "c", "j")
    assert status.progress == Progress(percent="0%")
