"""prepare of a version damaged in the cache: one line naming the version and the file, and the fix."""

from __future__ import annotations

import os
from pathlib import Path

from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, run_cli


def test_a_missing_file_is_named_with_the_commands_that_repair_it(dirs: Dirs) -> None:
    version = publish_version(dirs.cache, "objects/thor=v3", {"f1.bin": b"x" * 1000, "d/f2.bin": b"y"})
    os.chmod(version, 0o755)
    (version / "f1.bin").unlink()  # damaged after publication
    result = run_cli(*dirs.args("--version", "objects/thor=v3"))
    assert result.code == 0, result.err
    assert result.err.splitlines() == [
        "dscache: objects/thor=v3: copying 1001 B (2 files) to scratch",
        f"dscache: warning: objects/thor=v3: not copied to scratch (the cache's copy is damaged: f1.bin is "
        f"missing ({version}/f1.bin); `dscache verify --cache {dirs.cache}` lists the damage and the "
        "install command that repairs it); linked from the cache volume as it is",
    ]
    assert Path(os.path.realpath(dirs.links / "objects" / "thor")) == version.resolve()
    assert not (dirs.scratch / "objects").exists()
