"""A copy that a live links directory points at is never evicted, however long ago it was prepared."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from dscache.prepare.scratch_status import run_scratch_status
from dscache.store.liveness import host_name
from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, run_cli
from tests.pids import dead_pid

BUDGET = ["--scratch-max-bytes", "3000"]  # room for one of the 2000-byte versions below
HOUR_AND_A_MINUTE = 61 * 60
NODE = os.uname().nodename


def _publish_two(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v3", {"f1.bin": b"t" * 2000})
    publish_version(dirs.cache, "scenes/ithor=8", {"f1.bin": b"i" * 2000})


def _prepare(dirs: Dirs, links: Path, version: str, *extra: str) -> str:
    result = run_cli(*dirs.args("--version", version, *BUDGET, *extra, links=links))
    assert result.code == 0, result.err
    return result.err


def _age_marker(dirs: Dirs, seconds: float) -> None:
    marker = dirs.scratch / ".dscache" / "used" / "objects" / "thor" / "v3"
    then = time.time() - seconds
    os.utime(marker, (then, then))


def _holds(dirs: Dirs) -> list[Path]:
    return sorted((dirs.scratch / ".dscache" / "holds").glob("*.json"))


def test_a_copy_a_running_pod_links_is_kept_after_keep_recent(
    dirs: Dirs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _publish_two(dirs)
    pod_a, pod_b = tmp_path / "podA", tmp_path / "podB"
    _prepare(dirs, pod_a, "objects/thor=v3")
    _age_marker(dirs, HOUR_AND_A_MINUTE)  # pod A has been training for 61 minutes
    err = _prepare(dirs, pod_b, "scenes/ithor=8")
    assert (pod_a / "objects" / "thor" / "f1.bin").read_bytes() == b"t" * 2000
    assert (dirs.scratch / "objects" / "thor" / "v3" / "f1.bin").is_file()
    assert (
        Path(os.path.realpath(pod_b / "scenes" / "ithor"))
        == (dirs.cache / "scenes" / "ithor" / "8").resolve()
    )
    warning = (
        "dscache: warning: scenes/ithor=8: not copied to scratch (needs 2.0 KiB, scratch can hold at "
        f"most 2.9 KiB without evicting copies in use: objects/thor=v3 (linked by {NODE}:{pod_a})); "
        "using the cache volume"
    )
    assert warning in err.splitlines()
    assert "evicted" not in err
    assert run_scratch_status(dirs.scratch, as_json=True) == 0
    copies = json.loads(capsys.readouterr().out)["copies"]
    assert [(c["version"], c["heldBy"]) for c in copies] == [("objects/thor=v3", [f"{NODE}:{pod_a}"])]


def test_a_copy_is_evicted_once_its_links_dir_is_gone_with_one_line(dirs: Dirs, tmp_path: Path) -> None:
    _publish_two(dirs)
    pod_a, pod_b = tmp_path / "podA", tmp_path / "podB"
    _prepare(dirs, pod_a, "objects/thor=v3")
    _age_marker(dirs, HOUR_AND_A_MINUTE)
    shutil.rmtree(pod_a)  # the pod is gone: the kubelet deleted its links emptyDir
    err = _prepare(dirs, pod_b, "scenes/ithor=8")
    assert (
        "dscache: objects/thor=v3: evicted from scratch (2.0 KiB, least recently used: last prepared 1h01m "
        "ago, no links hold it) to make room for scenes/ithor=8"
    ) in err.splitlines()
    assert not (dirs.scratch / "objects" / "thor" / "v3").exists()
    assert (pod_b / "scenes" / "ithor").resolve() == (dirs.scratch / "scenes" / "ithor" / "8").resolve()
    assert [json.loads(p.read_text())["versions"] for p in _holds(dirs)] == [["scenes/ithor=8"]]


def test_another_pods_hold_lasts_the_hold_max_it_recorded(dirs: Dirs, tmp_path: Path) -> None:
    _publish_two(dirs)
    pod_a, pod_b = tmp_path / "podA", tmp_path / "podB"
    _prepare(dirs, pod_a, "objects/thor=v3", "--scratch-hold-max", "7200")
    _age_marker(dirs, HOUR_AND_A_MINUTE)
    (hold,) = _holds(dirs)
    record = json.loads(hold.read_text())
    assert record["holdMax"] == 7200
    record["mountNamespace"] += 1  # written in another pod's container: its links dir cannot be seen here
    record["heldAt"] -= HOUR_AND_A_MINUTE
    hold.write_text(json.dumps(record))
    shutil.rmtree(pod_a)  # whatever is (not) at that path here says nothing about the other pod
    _prepare(dirs, pod_b, "scenes/ithor=8", "--scratch-hold-max", "60")  # pod B's own limit: not pod A's
    assert (dirs.scratch / "objects" / "thor" / "v3" / "f1.bin").is_file()
    assert hold.is_file()
    record["heldAt"] -= HOUR_AND_A_MINUTE  # held 122 min ago: past the 7200 s pod A recorded
    hold.write_text(json.dumps(record))
    err = _prepare(dirs, pod_b, "scenes/ithor=8")
    assert "objects/thor=v3: evicted from scratch (2.0 KiB" in err
    assert not (dirs.scratch / "objects" / "thor" / "v3").exists()
    assert not hold.exists()


@pytest.mark.parametrize(
    ("pid_host", "kept"),
    [
        (f"{NODE}-pidns1", True),  # a prepare in another pid namespace: its pid says nothing here
        (None, True),  # a pending record of an older dscache: no identity, the pid proves nothing
        ("this", False),  # a prepare of this pid namespace whose pid is gone: killed before linking
    ],
    ids=["other-pid-namespace", "no-identity", "same-pid-namespace"],
)
def test_a_pending_hold_is_released_by_a_dead_pid_only_in_its_own_pid_namespace(
    dirs: Dirs, tmp_path: Path, pid_host: str | None, kept: bool
) -> None:
    """A prepare that wrote its pending hold and is still copying (no links yet) keeps its copies,
    unless its pid is judged gone where the pid means that process."""
    _publish_two(dirs)
    pod_a, pod_b = tmp_path / "podA", tmp_path / "podB"
    _prepare(dirs, pod_a, "objects/thor=v3")
    _age_marker(dirs, HOUR_AND_A_MINUTE)
    (pod_a / "objects" / "thor").unlink()  # pod A's prepare has not made its link yet
    (hold,) = _holds(dirs)
    record = json.loads(hold.read_text())
    record.update(pending=True, pid=dead_pid(), pidHost=host_name() if pid_host == "this" else pid_host)
    if pid_host is None:
        del record["pidHost"]
    hold.write_text(json.dumps(record))
    err = _prepare(dirs, pod_b, "scenes/ithor=8")
    assert (dirs.scratch / "objects" / "thor" / "v3" / "f1.bin").is_file() is kept
    assert ("objects/thor=v3: evicted from scratch (2.0 KiB" in err) is not kept
