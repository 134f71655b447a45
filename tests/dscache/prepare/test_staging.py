"""A scratch staging dir is another process's copy in progress until its owner is known gone: by its
pid only where the identity in its name is this process's (same node, same pid namespace), else by
its heartbeat."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dscache.prepare.scratchpaths import ScratchPaths
from dscache.prepare.staging import STALE_AFTER, Owner, clean_abandoned, live_staging_names, parse_owner
from dscache.store.liveness import host_name
from tests.pids import dead_pid

NODE = os.uname().nodename


def _staging(root: Path, host: str, pid: int, *, age: float = 0.0) -> str:
    """A staging dir named for `host` and `pid` whose heartbeat is `age` seconds old; its name."""
    path = ScratchPaths(root).staging_root / f"0123abcd.{host}.{pid}.feed"
    path.mkdir(parents=True)
    if age:
        beat = path.stat().st_mtime - age
        os.utime(path, (beat, beat))
    return path.name


def test_parse_owner_reads_host_with_dots() -> None:
    assert parse_owner("0123abcd.node-1.example.com.4242.ab12cd") == Owner(
        "0123abcd", "node-1.example.com", 4242
    )
    assert parse_owner("garbage") is None
    assert parse_owner("tag.host.notapid.token") is None


def test_a_dir_of_this_pid_namespace_is_judged_by_its_pid(tmp_path: Path) -> None:
    live = _staging(tmp_path, host_name(), os.getppid())
    dead = _staging(tmp_path, host_name(), dead_pid())
    own = _staging(tmp_path, host_name(), os.getpid())  # an earlier run of this container had our pid
    assert live_staging_names(ScratchPaths(tmp_path)) == {live}
    clean_abandoned(ScratchPaths(tmp_path))
    assert {p.name for p in ScratchPaths(tmp_path).staging_root.iterdir()} == {live}
    assert {dead, own}.isdisjoint(live_staging_names(ScratchPaths(tmp_path)))


@pytest.mark.parametrize(
    "host",
    [f"{NODE}-pidns1", NODE, "other-node-pidns4026531836"],
    ids=["same-node-other-pid-namespace", "bare-node-name", "other-node"],
)
def test_a_dir_of_another_pid_namespace_is_judged_by_its_heartbeat(tmp_path: Path, host: str) -> None:
    """Its pid means another process here, or none: a fresh heartbeat keeps it, a stale one does not."""
    dead = dead_pid()
    fresh = _staging(tmp_path, host, dead)
    stale = _staging(tmp_path, host, dead + 1, age=STALE_AFTER + 5)
    assert live_staging_names(ScratchPaths(tmp_path)) == {fresh}
    clean_abandoned(ScratchPaths(tmp_path))
    assert [p.name for p in ScratchPaths(tmp_path).staging_root.iterdir()] == [fresh]
    assert stale not in live_staging_names(ScratchPaths(tmp_path))


def test_unknown_names_are_abandoned(tmp_path: Path) -> None:
    ScratchPaths(tmp_path).staging_root.joinpath("garbage").mkdir(parents=True)
    assert live_staging_names(ScratchPaths(tmp_path)) == set()
