"""Scratch shared by pods of different users (one hostPath per node): the modes prepare leaves.

Init containers run as their pod's user, so the next pod on the node may be another uid. The
cluster test tests/cluster/test_node.py runs two such pods on the real node; this one checks the
modes that make it work, under the umask containers start with."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, run_cli

VERSION = "objects/thor=v1"


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_dirs_are_sticky_world_writable_markers_refreshable_and_copies_world_readable(dirs: Dirs) -> None:
    publish_version(dirs.cache, VERSION, {"a/b.txt": b"hello", "top.bin": b"x" * 100})
    old = os.umask(0o022)  # runc's default for containers
    try:
        result = run_cli(*dirs.args("--version", VERSION, "--json"))
    finally:
        os.umask(old)
    assert result.code == 0, result.err
    assert result.json()["versions"][0]["location"] == "scratch"
    shared = [
        ".dscache",
        ".dscache/staging",
        ".dscache/used",
        ".dscache/used/objects",
        "objects",
        "objects/thor",
    ]
    assert {d: _mode(dirs.scratch / d) for d in shared} == dict.fromkeys(shared, 0o1777)
    assert _mode(dirs.scratch / ".dscache/used/objects/thor/v1") == 0o666  # any user refreshes it
    copy = dirs.scratch / "objects/thor/v1"
    assert _mode(copy / "a/b.txt") == _mode(copy / "top.bin") == 0o444
    assert _mode(copy) == _mode(copy / "a") == 0o755
