"""`gc` and `release` check up front, as `install` does, that they can write what they change (the
writer lock's directory, the trash, the refs, the directories they rename versions out of): one line
naming the path, a non-zero exit, nothing changed on disk. Read-only bind mounts stand in for the
unwritable paths (root passes a plain chmod)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.dscache.cli.cli_helpers import assert_one_clean_line, run
from tests.factories import make_tree

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")

FIX = "on a read-only file system, and dscache writes"


@contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """`path` (a directory) made read-only for the block by a read-only bind mount over itself."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def snapshot(root: Path) -> dict[str, tuple[int, bytes | str | None]]:
    """Every path below `root` with its mode and content (a file's bytes, a symlink's target)."""
    out: dict[str, tuple[int, bytes | str | None]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        body = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else None
        out[path.relative_to(root).as_posix()] = (st.st_mode, body)
    return out


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A cache with objects/t=v2 and objects/u=v1 under ref `a` (v2 replaced objects/t=v1 there, which no
    ref names now), and objects/u=v1 under ref `b`."""
    remote = make_tree(
        tmp_path / "remote", {"objects/t/v1/x.txt": 10, "objects/t/v2/x.txt": 20, "objects/u/v1/y.txt": 30}
    )
    cache = tmp_path / "cache"
    base = ["install", "-q", "--cache", str(cache), "--source", f"file://{remote}", "--layout", "Files"]
    assert run(*base, "--ref", "a", "--version", "objects/t=v1", "--version", "objects/u=v1").code == 0
    assert run(*base, "--ref", "a", "--version", "objects/t=v2").code == 0
    assert run(*base, "--ref", "b", "--version", "objects/u=v1").code == 0
    (cache / ".dscache" / "trash").mkdir(exist_ok=True)
    return cache


def test_release_with_read_only_refs_removes_nothing(cache: Path) -> None:
    refs = cache / ".dscache" / "refs"
    before = snapshot(cache)
    with read_only(refs):
        result = run("release", "--cache", str(cache), "--ref", "a")
    assert_one_clean_line(
        result,
        1,
        f"{refs}: {FIX} its refs there; fix that, then run release again (nothing was removed)",
    )
    assert snapshot(cache) == before  # objects/t=v2 was removed before its ref could not be dropped


def test_gc_with_a_read_only_trash_removes_nothing(cache: Path) -> None:
    (cache / ".dscache" / "refs" / "a.json").unlink()  # objects/t=v2 unreferenced too
    trash = cache / ".dscache" / "trash"
    before = snapshot(cache)
    with read_only(trash):
        result = run("gc", "--cache", str(cache), "--keep", "0")
    assert_one_clean_line(
        result,
        1,
        f"{trash}: {FIX} what it removes (its trash) there; fix that, then run gc again "
        "(nothing was removed)",
    )
    assert snapshot(cache) == before


@pytest.mark.parametrize("command", ["gc", "release"])
def test_a_read_only_directory_a_version_leaves_stops_it_before_any_removal(
    cache: Path, command: str
) -> None:
    """gc removes objects/t=v1 and v2, release objects/t=v2; objects/t sits on a read-only mount: no
    version is renamed into the trash."""
    if command == "gc":
        (cache / ".dscache" / "refs" / "a.json").unlink()
        argv, first = ["gc", "--cache", str(cache), "--keep", "0"], "v1"
    else:
        argv, first = ["release", "--cache", str(cache), "--ref", "a"], "v2"
    before = snapshot(cache)
    parent = cache / "objects" / "t"
    with read_only(parent):
        result = run(*argv)
    assert_one_clean_line(
        result,
        1,
        f"{parent}: {FIX} the removal of version objects/t={first} there; fix that, then run {command} again "
        "(nothing was removed)",
    )
    assert snapshot(cache) == before


def test_a_control_dir_on_a_read_only_mount_is_named_before_the_lock(cache: Path) -> None:
    control = cache / ".dscache"
    before = snapshot(cache)
    with read_only(control):
        result = run("gc", "--cache", str(cache), "--keep", "0")
    assert_one_clean_line(
        result,
        1,
        f"{control}: {FIX} its control files (lock, refs, staging) there; fix that, then run gc again "
        "(nothing was removed)",
    )
    assert snapshot(cache) == before


def test_a_dry_run_gc_needs_no_writable_trash(cache: Path) -> None:
    (cache / ".dscache" / "refs" / "a.json").unlink()
    before = snapshot(cache)
    with read_only(cache / ".dscache" / "trash"):
        result = run("gc", "--cache", str(cache), "--keep", "0", "--dry-run")
    assert result.code == 0, result.lines
    assert "would remove objects/t=v1" in result.out
    assert snapshot(cache) == before
