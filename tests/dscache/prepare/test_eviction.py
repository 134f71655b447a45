from __future__ import annotations

import json
import os
import time
from pathlib import Path

from dscache.api.names import parse_version_arg
from dscache.prepare.eviction import Resident, effective_budget, plan_eviction
from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, run_cli

A, B, C = (parse_version_arg(f"objects/thor={v}") for v in ("a", "b", "c"))


def test_plan_evicts_least_recently_used_first() -> None:
    residents = [Resident(A, 40, last_used=1.0), Resident(B, 40, last_used=2.0)]
    assert plan_eviction(residents, protected=set(), need=40, budget=100) == [A]


def test_plan_skips_protected_versions() -> None:
    residents = [Resident(A, 40, last_used=1.0), Resident(B, 40, last_used=2.0)]
    assert plan_eviction(residents, protected={A}, need=40, budget=100) == [B]


def test_plan_evicts_nothing_when_it_would_not_help() -> None:
    residents = [Resident(A, 40, last_used=1.0), Resident(B, 40, last_used=2.0)]
    assert plan_eviction(residents, protected={B}, need=80, budget=100) is None
    assert plan_eviction([], protected=set(), need=101, budget=100) is None


def test_plan_evicts_nothing_when_it_fits() -> None:
    assert plan_eviction([Resident(A, 40, last_used=1.0)], protected=set(), need=60, budget=100) == []


def test_budget_is_capped_by_free_disk() -> None:
    assert effective_budget(None, usage=30, free=70) == 100
    assert effective_budget(50, usage=30, free=70) == 50
    assert effective_budget(500, usage=30, free=70) == 100


def _publish_three(dirs: Dirs) -> None:
    for v in ("a", "b", "c"):
        publish_version(dirs.cache, f"objects/thor={v}", {"data.bin": v.encode() * 1000, "x/y.txt": b"y"})


def _on_scratch(dirs: Dirs) -> list[str]:
    return sorted(p.name for p in (dirs.scratch / "objects" / "thor").iterdir())


def test_budget_evicts_the_least_recently_used_copy(dirs: Dirs) -> None:
    _publish_three(dirs)
    budget = ["--scratch-max-bytes", "2500", "--scratch-keep-recent", "0"]  # room for two of 1001 bytes
    for v in ("a", "b", "a", "c"):  # `a` is used again, so `b` is the oldest when `c` arrives
        result = run_cli(*dirs.args("--version", f"objects/thor={v}", *budget))
        assert result.code == 0, result.err
    assert _on_scratch(dirs) == ["a", "c"]
    assert (dirs.links / "objects" / "thor" / "data.bin").read_bytes() == b"c" * 1000
    assert not (dirs.scratch / ".dscache" / "used" / "objects" / "thor" / "b").exists()
    assert list((dirs.scratch / ".dscache" / "trash").iterdir()) == []  # evicted by rename, then deleted


def test_version_too_big_for_scratch_falls_back_to_cache(dirs: Dirs) -> None:
    _publish_three(dirs)
    result = run_cli(*dirs.args("--version", "objects/thor=a", "--scratch-max-bytes", "1k", "--json"))
    assert result.code == 0
    assert "not copied to scratch" in result.err and "using the cache volume" in result.err
    link = dirs.links / "objects" / "thor"
    assert Path(link.resolve()) == (dirs.cache / "objects" / "thor" / "a").resolve()
    assert (link / "data.bin").read_bytes() == b"a" * 1000
    out = result.json()
    assert out["versions"][0]["location"] == "cache" and out["warnings"]
    assert not (dirs.scratch / "objects").exists()


def test_requested_versions_are_never_evicted_for_each_other(dirs: Dirs) -> None:
    versions = [arg for v in ("a", "b", "c") for arg in ("--version", f"objects{v}/thor={v}")]
    for v in ("a", "b", "c"):
        publish_version(dirs.cache, f"objects{v}/thor={v}", {"data.bin": v.encode() * 1000})
    result = run_cli(*dirs.args(*versions, "--scratch-max-bytes", "2500", "--json"))
    assert result.code == 0
    locations = [v["location"] for v in json.loads(result.out)["versions"]]
    assert locations == ["scratch", "scratch", "cache"]


def test_recently_used_copies_are_kept_for_running_pods(dirs: Dirs) -> None:
    _publish_three(dirs)
    budget = ["--scratch-max-bytes", "2500"]
    for v in ("a", "b"):
        assert run_cli(*dirs.args("--version", f"objects/thor={v}", *budget)).code == 0
    result = run_cli(*dirs.args("--version", "objects/thor=c", *budget, "--json"))
    assert result.code == 0 and "not copied to scratch" in result.err
    assert _on_scratch(dirs) == ["a", "b"]  # a pod may still be training from either
    two_hours_ago = time.time() - 7200
    os.utime(dirs.scratch / ".dscache" / "used" / "objects" / "thor" / "a", (two_hours_ago, two_hours_ago))
    assert run_cli(*dirs.args("--version", "objects/thor=c", *budget)).code == 0
    assert _on_scratch(dirs) == ["b", "c"]
