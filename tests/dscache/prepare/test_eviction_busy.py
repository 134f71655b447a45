"""Scratch eviction when a file of the evicted copy cannot be deleted yet (see tests/dscache/busy.py).

The copy still leaves its published path (renamed into scratch's trash), the new version is copied,
the busy entry is named in a warning, and a later prepare finishes the deletion once it is released.
"""

from __future__ import annotations

import os

from tests.dscache.busy import pin, unpin_all, unpinned_at_exit
from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, run_cli


def test_evicting_a_copy_with_a_busy_file_warns_and_finishes_later(dirs: Dirs) -> None:
    for v in ("a", "b", "c"):
        publish_version(dirs.cache, f"objects/thor={v}", {"data.bin": v.encode() * 1000, "x/y.txt": b"y"})
    budget = ["--scratch-max-bytes", "2500", "--scratch-keep-recent", "0"]  # room for two of 1001 bytes
    trash = dirs.scratch / ".dscache" / "trash"
    with unpinned_at_exit(dirs.scratch):
        for v in ("a", "b"):
            assert run_cli(*dirs.args("--version", f"objects/thor={v}", *budget)).code == 0
        pin(dirs.scratch / "objects" / "thor" / "a" / "x" / "y.txt")  # a pod on this node reads it
        result = run_cli(*dirs.args("--version", "objects/thor=c", *budget))
        assert result.code == 0, result.err
        assert sorted(os.listdir(dirs.scratch / "objects" / "thor")) == ["b", "c"]
        assert (dirs.links / "objects" / "thor" / "data.bin").read_bytes() == b"c" * 1000
        (grave,) = os.listdir(trash)
        assert sorted(str(p.relative_to(trash / grave)) for p in (trash / grave).rglob("*")) == [
            "x",
            "x/y.txt",
        ]
        (warning,) = [line for line in result.err.splitlines() if "warning" in line]
        assert warning == (
            f"dscache prepare: warning: scratch .dscache/trash/{grave} is left for a later run: "
            f".dscache/trash/{grave}/x/y.txt: Operation not permitted"
        )
        unpin_all(dirs.scratch)
        result = run_cli(*dirs.args("--version", "objects/thor=c", *budget))
        assert result.code == 0 and "warning" not in result.err
        assert os.listdir(trash) == []
