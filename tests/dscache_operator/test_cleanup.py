"""The cleanup Job run on deletion with retention.onDelete: Delete."""

from __future__ import annotations

from dscache_operator import names
from dscache_operator.cleanup import build_cleanup_job
from tests.dscache_operator.builder_inputs import BODY, POD_SECURITY, SETTINGS


def test_cleanup_job_releases_the_ref_without_credentials() -> None:
    job = build_cleanup_job(BODY, SETTINGS, claim="shared", in_use=["a/b=c"])
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    [release] = pod["containers"]
    assert release["args"] == [
        "release",
        "--cache",
        "/cache",
        "--ref",
        "ml.objs",
        "--json",
        "--in-use",
        "a/b=c",
    ]
    assert job["metadata"]["labels"][names.LABEL_CLAIM] == "shared"
    assert not any("valueFrom" in e for e in release["env"])


def test_cleanup_job_pulls_and_runs_as_the_settings_say() -> None:
    pod = build_cleanup_job(BODY, SETTINGS, claim="shared", in_use=[])["spec"]["template"]["spec"]
    assert pod["securityContext"] == POD_SECURITY
    [release] = pod["containers"]
    assert release["imagePullPolicy"] == "Always" and release["image"] == "registry.example/dscache:1.2.3"


def test_cleanup_job_mounts_no_token_of_any_kind() -> None:
    pod = build_cleanup_job(BODY, SETTINGS, claim="shared", in_use=[])["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["cache", "tmp"]
    [release] = pod["containers"]
    assert all(not m["mountPath"].startswith("/var/run/secrets") for m in release["volumeMounts"])
