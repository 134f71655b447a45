"""A published version is exactly its plan: what an earlier, failed run staged for items the plan no
longer lists is dropped before publishing, and `dscache verify` passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import CachePaths
from tests.factories import dataset_snapshot, make_tree, publish_archives

KEY = VersionKey("d", "s", "v1")


def _install(cache: Path, remote: Path, layout: str) -> int:
    return main(
        [
            "install",
            "--cache",
            str(cache),
            "--source",
            f"file://{remote}",
            "--layout",
            layout,
            "--version",
            "d/s=v1",
        ]
    )


def test_a_file_staged_by_a_failed_run_and_deleted_from_the_remote_is_not_published(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = make_tree(tmp_path / "R", {"d/s/v1/a.txt": "a", "d/s/v1/c.txt": "fixed"})
    cache = tmp_path / "C"
    # What a run that failed on c.txt left: b.txt (deleted from the remote since) staged, in a subdir too.
    staged = CachePaths(cache).staging_dir(KEY) / "files"
    make_tree(staged, {"a.txt": "a", "b.txt": "gone", "old/b2.txt": "gone", "empty": None})

    assert _install(cache, remote, "files") == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == {"a.txt": b"a", "c.txt": b"fixed"}
    capsys.readouterr()
    assert main(["verify", "--cache", str(cache)]) == 0
    assert "DIFFERS" not in capsys.readouterr().out


def test_a_tree_left_by_a_run_that_died_while_assembling_is_not_published(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_tree(tmp_path / "data", {"a.txt": "a", "sub/b.txt": "b"})
    remote = tmp_path / "R"
    publish_archives(tree, remote, KEY, archive_size=1 << 20)
    cache = tmp_path / "C"
    make_tree(CachePaths(cache).staging_dir(KEY) / "tree", {"stale.txt": "old", "sub/stale2.txt": "old"})

    assert _install(cache, remote, "archives") == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == {
        "a.txt": b"a",
        "sub": None,
        "sub/b.txt": b"b",
    }
    capsys.readouterr()
    assert main(["verify", "--cache", str(cache)]) == 0
    assert "DIFFERS" not in capsys.readouterr().out
