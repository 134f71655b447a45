"""`spec.install.workers: K`: the installer Job as K cooperating pods spread over nodes."""

from __future__ import annotations

import copy
from typing import Any

from dscache.api.spec import parse_spec
from dscache_operator import names
from dscache_operator.installer import build_installer_job, spec_hash, spread_over_nodes
from dscache_operator.volume import get_claim_name
from tests.dscache_operator.builder_inputs import BODY, SETTINGS, SPEC

ANTI_AFFINITY_TERM = {
    "weight": 100,
    "podAffinityTerm": {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": {"batch.kubernetes.io/job-name": "JOB"}},
    },
}


def _job(workers: int) -> dict[str, Any]:
    parsed = parse_spec({**SPEC, "install": {**SPEC["install"], "workers": workers}})
    digest = spec_hash(parsed)
    name = names.installer_job_name("objs", digest)
    return build_installer_job(
        BODY, parsed, SETTINGS, job_name=name, claim=get_claim_name("objs", parsed), digest=digest, in_use=[]
    )


def _term(job: dict[str, Any]) -> dict[str, Any]:
    term = copy.deepcopy(ANTI_AFFINITY_TERM)
    term["podAffinityTerm"]["labelSelector"]["matchLabels"]["batch.kubernetes.io/job-name"] = job["metadata"][
        "name"
    ]
    return term


def test_three_workers_make_an_indexed_job_of_three_pods_on_distinct_nodes() -> None:
    job = _job(3)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert (spec["completions"], spec["parallelism"]) == (3, 3)
    assert (spec["backoffLimitPerIndex"], spec["backoffLimit"]) == (1, 3)
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    [install] = pod["initContainers"]
    assert install["args"][-2:] == ["--workers", "3"]
    [gc] = pod["containers"]
    assert gc["args"][-2:] == ["--lock-timeout", "inf"]
    assert pod["affinity"] == {
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [_term(job)]}
    }


def test_one_worker_is_the_plain_job() -> None:
    job = _job(1)
    assert "completionMode" not in job["spec"] and "affinity" not in job["spec"]["template"]["spec"]
    assert "--workers" not in job["spec"]["template"]["spec"]["initContainers"][0]["args"]


def test_the_spread_is_merged_into_the_users_affinity() -> None:
    job = _job(1)
    user_anti = {"weight": 5, "podAffinityTerm": {"topologyKey": "zone", "labelSelector": {}}}
    node = {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": []}]}
    }
    job["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": node,
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [user_anti]},
    }
    spread = spread_over_nodes(job, 2)
    assert spread["spec"]["template"]["spec"]["affinity"] == {
        "nodeAffinity": node,
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [user_anti, _term(job)]},
    }
    assert job["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ] == [user_anti], "the input Job is left as it was"
