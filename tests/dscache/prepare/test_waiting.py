"""Waiting for publication: polls until a deadline, exit code 3 naming what is missing."""

from __future__ import annotations

import threading
from pathlib import Path

from dscache.api.names import parse_version_arg
from dscache.prepare.request import from_versions
from dscache.prepare.waiting import wait_published
from dscache.store.paths import CachePaths
from dscache.store.records import RefEntry
from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, run_cli, run_proc, write_ref


def test_timeout_exits_3_naming_each_missing_version(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v1", {"f": b"1"})
    args = [
        "--version",
        "objects/thor=v1",
        "--version",
        "objects/extra=v9",
        "--version",
        "scenes/ithor=v3",
    ]
    result = run_proc(*dirs.args(*args, "--wait", "0.3"))
    assert result.code == 3
    assert "timed out after 0.3s waiting for 2 version(s)" in result.err
    assert "objects/extra=v9" in result.err and "scenes/ithor=v3" in result.err
    assert "objects/thor=v1" not in result.err
    assert not dirs.links.exists()


def test_missing_ref_times_out_with_its_name(dirs: Dirs) -> None:
    result = run_cli(*dirs.args("--ref", "team.train", "--wait", "0"))
    assert result.code == 3
    assert "ref 'team.train' does not exist" in result.err


def installer_started(cache: Path, version: str) -> None:
    """What an install leaves while it fetches `version`: its staging dir (a ref naming a version that
    is neither published nor being installed fails at once, `store/refgaps.py`)."""
    CachePaths(cache).staging_dir(parse_version_arg(version)).mkdir(parents=True)


def test_waits_until_the_installer_publishes(dirs: Dirs) -> None:
    write_ref(dirs.cache, "pod", [RefEntry("objects", "thor", "v1")])
    installer_started(dirs.cache, "objects/thor=v1")
    timer = threading.Timer(0.5, lambda: publish_version(dirs.cache, "objects/thor=v1", {"f": b"late"}))
    timer.start()
    try:
        result = run_cli(*dirs.args("--ref", "pod", "--wait", "30"))
    finally:
        timer.join()
    assert result.code == 0, result.err
    assert (dirs.links / "objects" / "thor" / "f").read_bytes() == b"late"


def test_follows_a_ref_that_moves_while_waiting(dirs: Dirs) -> None:
    write_ref(dirs.cache, "pod", [RefEntry("objects", "thor", "v-never")])
    installer_started(dirs.cache, "objects/thor=v-never")

    def move() -> None:
        publish_version(dirs.cache, "objects/thor=v2", {"f": b"2"})
        write_ref(dirs.cache, "pod", [RefEntry("objects", "thor", "v2")])

    timer = threading.Timer(0.5, move)
    timer.start()
    try:
        result = run_cli(*dirs.args("--ref", "pod", "--wait", "30", scratch=False))
    finally:
        timer.join()
    assert result.code == 0, result.err
    assert (dirs.links / "objects" / "thor" / "f").read_bytes() == b"2"


def test_the_wait_is_logged_at_once_and_every_30_s_naming_what_is_missing(dirs: Dirs) -> None:
    write_ref(dirs.cache, "pod", [RefEntry("objects", "thor", "v1")])
    installer_started(dirs.cache, "objects/thor=v1")
    timer = threading.Timer(0.5, lambda: publish_version(dirs.cache, "objects/thor=v1", {"f": b"late"}))
    timer.start()
    try:
        result = run_cli(*dirs.args("--ref", "pod", "--wait", "30", scratch=False))
    finally:
        timer.join()
    assert result.code == 0, result.err
    assert result.err.splitlines()[0] == (
        "dscache: waiting 0s of 30s for 1 version(s) to be published: objects/thor=v1"
    )


def test_a_missing_ref_is_logged_while_waiting(dirs: Dirs) -> None:
    result = run_cli(*dirs.args("--ref", "team.train", "--wait", "0.3"))
    assert result.code == 3
    assert result.err.splitlines()[0] == (
        f"dscache: waiting 0s of 0.3s for ref 'team.train' to exist in {dirs.cache} "
        "(its DatasetCache installs it)"
    )


def test_wait_published_reports_every_30_s_until_the_deadline(dirs: Dirs) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    reports: list[tuple[int, float]] = []
    state = wait_published(
        CachePaths(dirs.cache),
        lambda: from_versions([parse_version_arg("objects/thor=v1")]),
        100.0,
        sleep=sleep,
        clock=lambda: now[0],
        report=lambda s, waited: reports.append((len(s.missing), waited)),
    )
    assert [str(k) for k in state.missing] == ["objects/thor=v1"]
    # polls at 0, 0.2, 0.6, 1.4, 3, then every 2 s: the first poll at least 30 s after the last line
    assert [round(w) for _, w in reports] == [0, 31, 61, 91]
    assert {n for n, _ in reports} == {1}
