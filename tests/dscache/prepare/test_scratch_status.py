from __future__ import annotations

import json
import os

import pytest

from dscache.prepare.scratch_status import run_scratch_status
from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, run_cli


def test_status_shows_copies_sizes_last_use_and_damage(
    dirs: Dirs, capsys: pytest.CaptureFixture[str]
) -> None:
    for v in ("v1", "v2"):
        publish_version(dirs.cache, f"objects/thor={v}", {"a/f.bin": b"x" * 2048})
        assert run_cli(*dirs.args("--version", f"objects/thor={v}")).code == 0
    os.utime(dirs.scratch / ".dscache" / "used" / "objects" / "thor" / "v1", (0, 0))
    (dirs.scratch / "objects" / "thor" / "v2" / "a" / "f.bin").unlink()
    assert run_scratch_status(dirs.scratch, as_json=True) == 0
    copies = json.loads(capsys.readouterr().out)["copies"]
    assert copies == [
        {
            "version": "objects/thor=v2",
            "state": "damaged",
            "files": 1,
            "bytes": 2048,
            "lastUsed": copies[0]["lastUsed"],
            "lastUsedInFuture": False,
            "heldBy": [f"{os.uname().nodename}:{dirs.links}"],  # the links' last prepare
        },
        {
            "version": "objects/thor=v1",
            "state": "ok",
            "files": 1,
            "bytes": 2048,
            "lastUsed": "1970-01-01T00:00:00Z",
            "lastUsedInFuture": False,
            "heldBy": [],
        },
    ]
    assert run_scratch_status(dirs.scratch, as_json=False) == 0
    table = capsys.readouterr().out
    assert "objects/thor=v1  ok" in table and "2.0 KiB" in table


def test_status_of_a_missing_dir_fails(dirs: Dirs) -> None:
    assert run_scratch_status(dirs.scratch / "nope", as_json=False) == 1


def test_status_lists_only_what_is_on_scratch(dirs: Dirs, capsys: pytest.CaptureFixture[str]) -> None:
    publish_version(dirs.cache, "objects/thor=small", {"f.bin": b"s" * 1000})
    publish_version(dirs.cache, "objects/thor=big", {"f.bin": b"b" * 5000})
    for v in ("small", "big"):  # the budget keeps `big` off scratch: it is linked from the cache
        assert run_cli(*dirs.args("--version", f"objects/thor={v}", "--scratch-max-bytes", "3000")).code == 0
    assert run_scratch_status(dirs.scratch, as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(c["version"], c["state"], c["bytes"]) for c in report["copies"]] == [
        ("objects/thor=small", "ok", 1000)
    ]
    assert sorted(report["copies"][0]) == [
        "bytes",
        "files",
        "heldBy",
        "lastUsed",
        "lastUsedInFuture",
        "state",
        "version",
    ]
    assert run_scratch_status(dirs.scratch, as_json=False) == 0
    table = capsys.readouterr().out
    assert "objects/thor=big" not in table
    assert table.splitlines()[-1] == "1 version(s), 1000 B in good copies, 0 copies in progress"
