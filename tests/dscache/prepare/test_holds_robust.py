"""Holds that cannot be read or that others wrote, and the windows around a scratch copy: a copy a
links directory uses is never evicted or made to disappear, and the budget holds with copies racing."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dscache.api.names import parse_version_arg
from dscache.prepare import scratch as scratch_module
from dscache.prepare import staging
from dscache.prepare.run import PrepareRequest, prepare
from dscache.prepare.scratch_status import run_scratch_status
from tests.dscache.prepare.prepare_helpers import (
    Dirs,
    publish_tree,
    publish_version,
    run_cli,
    run_proc,
    staging_dir,
)

BUDGET = ["--scratch-max-bytes", "3000"]  # room for one of the 2000-byte versions below
HOUR_AND_A_MINUTE = 61 * 60
DAY = 24 * 3600
THOR = Path("objects", "thor", "v3")


def _publish_two(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v3", {"f1.bin": b"t" * 2000})
    publish_version(dirs.cache, "scenes/ithor=8", {"f1.bin": b"i" * 2000})


def _prepare(dirs: Dirs, links: Path, *versions_and_flags: str) -> str:
    result = run_cli(*dirs.args(*versions_and_flags, links=links))
    assert result.code == 0, result.err
    return result.err


def _age_marker(dirs: Dirs, rel: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(dirs.scratch / ".dscache" / "used" / rel, (then, then))


def _holds(dirs: Dirs) -> list[Path]:
    return sorted((dirs.scratch / ".dscache" / "holds").glob("*.json"))


def _thor_held_by_pod_a(dirs: Dirs, tmp_path: Path) -> tuple[Path, Path]:
    """Pod A links thor, prepared 61 min ago; returns pod A's links dir and pod B's."""
    _publish_two(dirs)
    pod_a, pod_b = tmp_path / "podA", tmp_path / "podB"
    _prepare(dirs, pod_a, "--version", "objects/thor=v3", *BUDGET)
    _age_marker(dirs, THOR, HOUR_AND_A_MINUTE)
    return pod_a, pod_b


def test_an_emptied_hold_record_keeps_every_copy_and_is_named(
    dirs: Dirs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, pod_b = _thor_held_by_pod_a(dirs, tmp_path)
    (hold,) = _holds(dirs)
    hold.write_bytes(b"")  # `: > hold`, by any pod on the node
    err = _prepare(dirs, pod_b, "--version", "scenes/ithor=8", *BUDGET)
    assert (dirs.scratch / THOR / "f1.bin").read_bytes() == b"t" * 2000
    assert "evicted" not in err
    assert (
        f"dscache: warning: hold record {hold} cannot be read (empty): it counts as holding every copy" in err
    )
    assert f"held by unreadable {hold}" in err
    assert run_scratch_status(dirs.scratch, as_json=True) == 0
    out, status_err = capsys.readouterr()
    assert [(c["version"], c["heldBy"]) for c in json.loads(out)["copies"]] == [
        ("objects/thor=v3", [f"unreadable {hold}"])
    ]
    assert f"dscache status: warning: hold record {hold} cannot be read (empty)" in status_err


def test_an_unreadable_hold_older_than_a_week_by_its_mtime_holds_nothing(dirs: Dirs, tmp_path: Path) -> None:
    _, pod_b = _thor_held_by_pod_a(dirs, tmp_path)
    (hold,) = _holds(dirs)
    hold.write_bytes(b"{not json")
    eight_days_ago = time.time() - 8 * DAY
    os.utime(hold, (eight_days_ago, eight_days_ago))
    err = _prepare(dirs, pod_b, "--version", "scenes/ithor=8", *BUDGET)
    assert "objects/thor=v3: evicted from scratch (2.0 KiB" in err
    assert not hold.exists()


def test_hold_records_are_their_writers_alone(dirs: Dirs, tmp_path: Path) -> None:
    _thor_held_by_pod_a(dirs, tmp_path)
    (hold,) = _holds(dirs)
    assert stat.S_IMODE(hold.stat().st_mode) == 0o644  # no other user may truncate it
    assert stat.S_IMODE(hold.parent.stat().st_mode) == 0o1777  # nor delete or replace it (sticky)


def test_a_short_hold_max_never_deletes_another_holders_record(dirs: Dirs, tmp_path: Path) -> None:
    _, pod_b = _thor_held_by_pod_a(dirs, tmp_path)
    (hold,) = _holds(dirs)
    record = json.loads(hold.read_text())
    record["mountNamespace"] += 1  # another pod's: its links dir cannot be seen here
    record["heldAt"] -= HOUR_AND_A_MINUTE
    hold.write_text(json.dumps(record))
    _prepare(dirs, tmp_path / "shell", "--version", "scenes/ithor=8", "--scratch-hold-max", "0")
    shutil.rmtree(tmp_path / "shell")
    assert hold.is_file()
    err = _prepare(dirs, pod_b, "--version", "scenes/ithor=8", *BUDGET, "--scratch-keep-recent", "0")
    assert "objects/thor=v3: evicted" not in err
    assert (dirs.scratch / THOR / "f1.bin").is_file()


def _prepare_in_process(
    dirs: Dirs, links: Path, versions: list[str], when: str, then: Callable[[], None]
) -> str:
    """Prepare in this process; run `then` when the log says `when` (another pod, meanwhile)."""
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        if when in line:
            then()

    request = PrepareRequest(
        cache=dirs.cache,
        links=links,
        versions=tuple(parse_version_arg(v) for v in versions),
        scratch=dirs.scratch,
        scratch_max_bytes=3000,
    )
    prepare(request, log)
    return "\n".join(lines)


def test_a_copy_already_there_is_held_while_this_prepare_copies_another(dirs: Dirs, tmp_path: Path) -> None:
    publish_version(dirs.cache, "objects/thor=v3", {"f1.bin": b"t" * 1000})
    publish_version(dirs.cache, "scenes/ithor=8", {"f1.bin": b"i" * 500})
    publish_version(dirs.cache, "objects/s=v1", {"f1.bin": b"s" * 2100})
    _prepare(dirs, tmp_path / "gone", "--version", "objects/thor=v3")  # on scratch, nobody links it
    shutil.rmtree(tmp_path / "gone")
    pod_a, pod_c = tmp_path / "podA", tmp_path / "podC"
    seen: list[str] = []

    def other_pod() -> None:  # needs room: only thor can make it, and pod A is about to link thor
        args = dirs.args("--version", "objects/s=v1", *BUDGET, "--scratch-keep-recent", "0", links=pod_c)
        seen.append(run_proc(*args).err)

    _prepare_in_process(
        dirs, pod_a, ["objects/thor=v3", "scenes/ithor=8"], "scenes/ithor=8: copying", other_pod
    )
    assert "evicted" not in seen[0]
    assert (pod_a / "objects" / "thor" / "f1.bin").read_bytes() == b"t" * 1000
    assert os.path.realpath(pod_a / "objects" / "thor") == str(dirs.scratch / THOR)


def test_copies_of_two_versions_at_once_stay_within_the_budget(dirs: Dirs, tmp_path: Path) -> None:
    publish_version(dirs.cache, "objects/thor=v3", {"f1.bin": b"t" * 2000})
    publish_version(dirs.cache, "scenes/ithor=8", {"f1.bin": b"i" * 2000})
    seen: list[str] = []

    def other_pod() -> None:
        seen.append(run_proc(*dirs.args("--version", "scenes/ithor=8", *BUDGET, links=tmp_path / "podB")).err)

    _prepare_in_process(dirs, tmp_path / "podA", ["objects/thor=v3"], "objects/thor=v3: copying", other_pod)
    assert (dirs.scratch / THOR / "f1.bin").is_file()
    assert not (dirs.scratch / "scenes" / "ithor" / "8").exists()
    assert (
        "dscache: warning: scenes/ithor=8: not copied to scratch (needs 2.0 KiB, scratch can hold at most "
        "1000 B beside 2.0 KiB other copies in progress will take); using the cache volume"
    ) in seen[0].splitlines()


def _republish(cache: Path, version: str, content: bytes, installed_at: str) -> None:
    old = cache.joinpath(*parse_version_arg(version).rel.split("/"))
    for dirpath, _, _ in os.walk(old):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(old)
    tree = staging_dir(cache)
    (tree / "f1.bin").write_bytes(content)
    publish_tree(cache, version, tree, installed_at=installed_at)


def test_a_repaired_version_replaces_its_held_copy_without_a_gap(
    dirs: Dirs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_version(dirs.cache, "objects/thor=v3", {"f1.bin": b"t" * 2000})
    pod_a = tmp_path / "podA"
    _prepare(dirs, pod_a, "--version", "objects/thor=v3")
    _republish(dirs.cache, "objects/thor=v3", b"n" * 2000, "2026-02-01T00:00:00Z")  # install --repair
    there_after_each_removal: list[bool] = []
    discard = staging.discard

    def watched(path: Path, scratch: object) -> None:
        discard(path, scratch)  # type: ignore[arg-type]
        there_after_each_removal.append((dirs.scratch / THOR / "f1.bin").is_file())

    monkeypatch.setattr(staging, "discard", watched)
    err = _prepare(dirs, tmp_path / "podB", "--version", "objects/thor=v3")
    assert there_after_each_removal == [True]
    assert (
        "dscache: objects/thor=v3: replaced its copy on scratch (the cache holds another install of it "
        "(installed 2026-02-01T00:00:00Z, the copy 2026-01-01T00:00:00Z)); links to it now reach the new copy"
    ) in err.splitlines()
    assert (pod_a / "objects" / "thor" / "f1.bin").read_bytes() == b"n" * 2000


def test_a_last_use_in_the_future_counts_as_now_and_ages_from_then(
    dirs: Dirs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _publish_two(dirs)
    _prepare(dirs, tmp_path / "gone", "--version", "objects/thor=v3", *BUDGET)
    shutil.rmtree(tmp_path / "gone")
    marker = dirs.scratch / ".dscache" / "used" / THOR
    tomorrow = time.time() + DAY
    os.utime(marker, (tomorrow, tomorrow))
    assert run_scratch_status(dirs.scratch, as_json=True) == 0
    out, err = capsys.readouterr()
    (copy,) = json.loads(out)["copies"]
    assert copy["lastUsedInFuture"] is True
    assert copy["lastUsed"] <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert (
        f"dscache status: warning: objects/thor=v3: its last-use marker {marker} is dated in the future"
        in err
    )
    _prepare(dirs, tmp_path / "podB", "--version", "scenes/ithor=8", *BUDGET)  # thor: used "now"
    assert marker.stat().st_mtime <= time.time()
    _age_marker(dirs, THOR, HOUR_AND_A_MINUTE)
    err = _prepare(dirs, tmp_path / "podB", "--version", "scenes/ithor=8", *BUDGET)
    assert "objects/thor=v3: evicted from scratch (2.0 KiB" in err


def test_status_names_a_holds_path_that_is_not_a_directory_and_shows_the_rest(
    dirs: Dirs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _thor_held_by_pod_a(dirs, tmp_path)
    holds_dir = dirs.scratch / ".dscache" / "holds"
    shutil.rmtree(holds_dir)
    holds_dir.write_text("")
    assert run_scratch_status(dirs.scratch, as_json=True) == 0
    out, err = capsys.readouterr()
    assert [(c["version"], c["heldBy"]) for c in json.loads(out)["copies"]] == [
        ("objects/thor=v3", [f"unreadable {holds_dir}"])
    ]
    (line,) = err.splitlines()
    assert line.startswith(
        f"dscache status: warning: holds directory {holds_dir} cannot be read (Not a directory)"
    )
    assert f"replace it with a directory (`rm {holds_dir}`)" in line


def test_status_judges_each_hold_by_the_limit_its_holder_recorded(
    dirs: Dirs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _thor_held_by_pod_a(dirs, tmp_path)
    (hold,) = _holds(dirs)
    record = json.loads(hold.read_text())
    record["mountNamespace"] += 1
    record["heldAt"] -= HOUR_AND_A_MINUTE
    record["holdMax"] = 3600  # that pod's --scratch-hold-max: over
    hold.write_text(json.dumps(record))
    assert run_scratch_status(dirs.scratch, as_json=True) == 0
    assert [c["heldBy"] for c in json.loads(capsys.readouterr().out)["copies"]] == [[]]


def test_without_an_atomic_swap_a_stale_copy_is_replaced_with_a_warning(
    dirs: Dirs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_version(dirs.cache, "objects/thor=v3", {"f1.bin": b"t" * 2000})
    pod_a = tmp_path / "podA"
    _prepare(dirs, pod_a, "--version", "objects/thor=v3")
    _republish(dirs.cache, "objects/thor=v3", b"n" * 2000, "2026-02-01T00:00:00Z")
    monkeypatch.setattr(scratch_module, "exchange", lambda a, b: False)  # no renameat2 (not Linux)
    err = _prepare(dirs, tmp_path / "podB", "--version", "objects/thor=v3")
    assert (
        "dscache: warning: objects/thor=v3: replacing its copy on scratch (the cache holds another install "
        "of it (installed 2026-02-01T00:00:00Z, the copy 2026-01-01T00:00:00Z)) without an atomic swap "
        "(this system has no renameat2 RENAME_EXCHANGE): a pod reading it may find it missing for a moment"
    ) in err.splitlines()
    assert (pod_a / "objects" / "thor" / "f1.bin").read_bytes() == b"n" * 2000
