"""Tree operations on the cache volume: merging staged archive trees (later ones win), freezing, flushing."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest

from dscache.store import fsops
from dscache.store.fsops import FROZEN_DIR_MODE, BackgroundFlush, freeze_dirs, merge_into
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


def test_background_flush_starts_its_thread_only_when_asked(tmp_path: Path) -> None:
    # Worker processes are forked after the flush object exists: no thread may be running by then.
    before = {t.name for t in threading.enumerate()}
    with BackgroundFlush(tmp_path) as flush:
        assert {t.name for t in threading.enumerate()} == before
        flush.request()
        flush.request()
        assert "dscache-flush" in {t.name for t in threading.enumerate()}
    assert {t.name for t in threading.enumerate()} == before


def test_background_flush_outlives_a_failed_flush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A failed background flush is left to the checked flush before publishing; later requests still run.
    calls: list[Path] = []

    def failing(path: Path) -> None:
        calls.append(path)
        raise OSError(errno.EIO, "I/O error", str(path))

    monkeypatch.setattr(fsops, "sync_filesystem", failing)
    flush = BackgroundFlush(tmp_path)
    for expected in (1, 2):
        flush.request()
        deadline = time.monotonic() + 10
        while len(calls) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(calls) == expected
    flush.close()
