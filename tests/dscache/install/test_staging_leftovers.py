"""A published version is exactly its plan: what an earlier, failed run staged for items the plan no
longer lists is dropped before publishing, and `dscache verify` passes."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import CachePaths
from tests.dscache.install.roundtrip import install
from tests.factories import (
    _info,
    content_for,
    corrupt_archive,
    dataset_snapshot,
    make_tree,
    publish_archives,
    publish_raw_archives,
    tar_zst,
)

KEY = VersionKey("d", "s", "v1")


@pytest.mark.parametrize("team", [(), ("--workers", "2", "--worker-index", "0")], ids=["single", "team"])
def test_a_file_staged_by_a_failed_run_and_deleted_from_the_remote_is_not_published(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], team: tuple[str, ...]
) -> None:
    remote = make_tree(tmp_path / "R", {"d/s/v1/a.txt": "a", "d/s/v1/c.txt": "fixed"})
    cache = tmp_path / "C"
    # What a run that failed on c.txt left: b.txt (deleted from the remote since) staged, in a subdir too.
    staged = CachePaths(cache).staging_dir(KEY) / "files"
    make_tree(staged, {"a.txt": "a", "b.txt": "gone", "old/b2.txt": "gone", "empty": None})

    assert install(cache, remote, KEY, layout="files", extra=team).code == 0
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

    assert install(cache, remote, KEY, layout="archives").code == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == {
        "a.txt": b"a",
        "sub": None,
        "sub/b.txt": b"b",
    }
    capsys.readouterr()
    assert main(["verify", "--cache", str(cache)]) == 0
    assert "DIFFERS" not in capsys.readouterr().out


def test_an_archive_staged_by_a_failed_run_and_replaced_on_the_remote_since_is_fetched_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote, cache = tmp_path / "R", tmp_path / "C"
    old = tar_zst(
        [
            (_info("a.txt", tarfile.REGTYPE, size=3), b"old"),
            (_info("pad", tarfile.REGTYPE, size=1 << 16), content_for("pad", 1 << 16)),
        ]
    )
    publish_raw_archives(remote, KEY, {"a.tar.zst": old, "b.tar.zst": corrupt_archive("garbage")})
    # One at a time, largest first: a.tar.zst is extracted and stays staged, done; b.tar.zst fails.
    assert install(cache, remote, KEY, layout="archives", extra=("--jobs", "1")).code == 1
    new = tar_zst([(_info("a.txt", tarfile.REGTYPE, size=5), b"newer")])
    good_b = tar_zst([(_info("b.txt", tarfile.REGTYPE, size=1), b"b")])
    publish_raw_archives(remote, KEY, {"a.tar.zst": new, "b.tar.zst": good_b})

    assert install(cache, remote, KEY, layout="archives").code == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == {
        "a.txt": b"newer",
        "b.txt": b"b",
    }  # no "pad"
    capsys.readouterr()
    assert main(["verify", "--cache", str(cache)]) == 0
