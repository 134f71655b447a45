"""What `dscache publish` leaves behind: nothing inside the tree it packs, no directory it made, and on
the remote exactly the version its manifest names (stale objects of a replaced version removed, on
every remote kind publish writes to); `ls-remote` tells an interrupted publish from a version."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.layouts.manifest import DSCACHE_MANIFEST
from dscache.layouts.molmospaces import MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST
from tests.factories import TreeSpec, make_tree, tree_snapshot

KEY = VersionKey("objects", "w", "v1")
TREE: TreeSpec = {"a/one.txt": 3000, "b/two.txt": 3000, "c/three.txt": 3000, "d/four.txt": 3000}
SMALL: TreeSpec = {"a/one.txt": 100}
METADATA = {MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST, DSCACHE_MANIFEST}


def publish_argv(tree: Path, *extra: str, version: VersionKey = KEY) -> list[str]:
    return ["publish", str(tree), "--version", str(version), "--archive-size", "4KiB", *extra]


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def entries_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# ------------------------------------------------------------------ item 1: where publish may write


@pytest.mark.parametrize(
    ("where", "flag"),
    [
        (lambda t: ["--to", f"file://{t}/out"], "--to"),
        (lambda t: ["--to", f"file://{t}"], "--to"),
        (lambda t: ["--to", f"file://{t.parent}"], "--to"),  # the tree inside the destination
        (lambda t: ["--to", f"file://{t.parent / 'elsewhere'}", "--work-dir", str(t / "work")], "--work-dir"),
        (lambda t: ["--to", f"file://{t.parent / 'elsewhere'}", "--work-dir", str(t.parent)], "--work-dir"),
    ],
    ids=["to-inside", "to-is-dir", "dir-inside-to", "work-inside", "dir-inside-work"],
)
def test_a_destination_overlapping_the_tree_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: object, flag: str
) -> None:
    tree = make_tree(tmp_path / "data" / "wsrc", TREE)
    before = entries_under(tmp_path)
    assert callable(where)
    assert main(publish_argv(tree, *where(tree))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and str(tree) in err[0] and "Traceback" not in err[0]
    assert entries_under(tmp_path) == before  # nothing created, nothing packed


def test_a_symlink_into_the_tree_is_an_overlap_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_tree(tmp_path / "wsrc", TREE)
    (tmp_path / "alias").symlink_to(tree)
    assert main(publish_argv(tree, "--to", f"file://{tmp_path / 'alias' / 'out'}")) == 2
    assert "--to" in capsys.readouterr().err
    assert not (tree / "out").exists()


def test_the_work_dir_publish_made_is_gone_after_success_and_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_tree(tmp_path / "wsrc", TREE)
    work = tmp_path / "work" / "a" / "b"
    assert main(publish_argv(tree, "--to", f"file://{tmp_path / 'ok'}", "--work-dir", str(work))) == 0
    assert not (tmp_path / "work").exists()

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "objects").write_text("a file where the data type's directory would go")
    assert main(publish_argv(tree, "--to", f"file://{broken}", "--work-dir", str(work))) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "work").exists()

    kept = tmp_path / "mine"
    kept.mkdir()
    (kept / "notes.txt").write_text("the user's")
    assert main(publish_argv(tree, "--to", f"file://{tmp_path / 'ok2'}", "--work-dir", str(kept))) == 0
    assert entries_under(kept) == ["notes.txt"]
    assert tree_snapshot(tree) == tree_snapshot(make_tree(tmp_path / "again", TREE))
