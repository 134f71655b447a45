"""`gc --keep N` keeps the N highest version names per source, whatever the install order.

Each test failed before the fix (gc kept the most recently installed versions)."""

from __future__ import annotations

from dscache.maintain.gc import plan_gc
from dscache.store.records import CompleteRecord


def _rec(version: str, installed_at: str, source: str = "thor") -> CompleteRecord:
    return CompleteRecord(
        "objects", source, version, "file:///r", "archives", 1, 1, installed_at=installed_at
    )


def test_keep_takes_the_highest_names_not_the_last_installed() -> None:
    records = [  # installed v10, then v3, then v9, then v1 (an old run reproduced)
        _rec("v10", "2026-01-01T00:00:00Z"),
        _rec("v3", "2026-01-02T00:00:00Z"),
        _rec("v9", "2026-01-03T00:00:00Z"),
        _rec("v1", "2026-01-04T00:00:00Z"),
    ]
    plan = plan_gc(records, set(), keep=2)
    assert [k.version for k in plan.keep] == ["v10", "v9"]
    assert [k.version for k in plan.remove] == ["v1", "v3"]


def test_dates_and_dotted_versions_compare_by_number_per_source() -> None:
    records = [
        _rec("2025-10-01", "2026-01-01T00:00:00Z"),
        _rec("2025-06-01", "2026-01-02T00:00:00Z"),
        _rec("1.10.0", "2026-01-01T00:00:00Z", source="ai2"),
        _rec("1.9.2", "2026-01-02T00:00:00Z", source="ai2"),
    ]
    plan = plan_gc(records, set(), keep=1)
    assert sorted(k.version for k in plan.keep) == ["1.10.0", "2025-10-01"]
    assert sorted(k.version for k in plan.remove) == ["1.9.2", "2025-06-01"]


def test_versions_in_use_do_not_count_towards_keep() -> None:
    records = [
        _rec("v3", "2026-01-01T00:00:00Z"),
        _rec("v2", "2026-01-02T00:00:00Z"),
        _rec("v1", "2026-01-03T00:00:00Z"),
    ]
    in_use = {records[0].key}
    plan = plan_gc(records, in_use, keep=1)
    assert [k.version for k in plan.keep] == ["v2", "v3"]
    assert [k.version for k in plan.remove] == ["v1"]
