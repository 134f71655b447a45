"""Object names stay valid whatever the DatasetCache is called."""

from __future__ import annotations

from dscache_operator import names


def test_names_stay_within_label_limits() -> None:
    long = "x" * 253
    assert len(names.installer_job_name(long, "0123456789abcdef")) <= 63
    assert names.installer_job_name(long, "a" * 16) != names.installer_job_name("x" * 252, "a" * 16)
    assert len(names.claim_label("c" * 200)) <= 63 and names.claim_label("short") == "short"
