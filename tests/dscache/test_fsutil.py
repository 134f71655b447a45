"""Merging staged archive trees: later archives replace what earlier ones put at the same path."""

from __future__ import annotations

import os
from pathlib import Path

from dscache.fsutil import FROZEN_DIR_MODE, freeze_dirs, merge_into
from tests.factories import Symlink, make_tree, tree_snapshot


def test_merge_moves_disjoint_subtrees_and_merges_shared_directories(tmp_path: Path) -> None:
    dst = make_tree(tmp_path / "dst", {"a/x.bin": b"old", "a/deep/keep.txt": b"k", "empty": None})
    src = make_tree(
        tmp_path / "src", {"a/y.bin": b"new", "a/deep/more.txt": b"m", "b/z.bin": b"z", "empty": None}
    )
    merge_into(src, dst)
    assert tree_snapshot(dst) == tree_snapshot(
        make_tree(
            tmp_path / "want",
            {"a/x.bin": b"old", "a/y.bin": b"new", "a/deep/keep.txt": b"k", "a/deep/more.txt": b"m",
             "b/z.bin": b"z", "empty": None},
        )
    )  # fmt: skip
    assert os.listdir(src) == []


def test_merge_replaces_entries_of_another_type(tmp_path: Path) -> None:
    dst = make_tree(
        tmp_path / "dst",
        {"file_then_dir": b"f", "dir_then_file/inner.txt": b"i", "link_then_dir": Symlink("file_then_dir"),
         "file_then_link": b"f", "same": b"old"},
    )  # fmt: skip
    src = make_tree(
        tmp_path / "src",
        {"file_then_dir/x.txt": b"x", "dir_then_file": b"now a file", "link_then_dir/y.txt": b"y",
         "file_then_link": Symlink("same"), "same": b"new"},
    )  # fmt: skip
    merge_into(src, dst)
    assert (dst / "file_then_dir/x.txt").read_bytes() == b"x"
    assert (dst / "dir_then_file").read_bytes() == b"now a file"
    assert not (dst / "link_then_dir").is_symlink() and (dst / "link_then_dir/y.txt").read_bytes() == b"y"
    assert os.readlink(dst / "file_then_link") == "same"
    assert (dst / "same").read_bytes() == b"new"


def test_merge_resumes_after_an_interruption(tmp_path: Path) -> None:
    dst = make_tree(tmp_path / "dst", {"a/x.bin": b"old"})
    src = make_tree(tmp_path / "src", {"a/y.bin": b"new", "b/z.bin": b"z"})
    os.rename(src / "b", dst / "b")  # as if a crash happened after the first rename
    merge_into(src, dst)
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob("*.bin")) == ["a/x.bin", "a/y.bin", "b/z.bin"]


def test_freeze_dirs_makes_listed_directories_read_only(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"a/b/f.txt": b"f", "c": None})
    freeze_dirs(root, ["a", "a/b", "c"])
    assert {d: (root / d).stat().st_mode & 0o777 for d in ("a", "a/b", "c")} == dict.fromkeys(
        ("a", "a/b", "c"), FROZEN_DIR_MODE
    )
