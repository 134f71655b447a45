"""prepare never deletes what it did not create: the cache (links or scratch overlapping it) and
user files, directories or symlinks already at a link path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dscache.store.records import RefEntry
from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, run_cli, write_ref

FILES = {"a.txt": b"alpha", "sub/b.txt": b"beta"}


def _cache_files(cache: Path) -> dict[str, bytes]:
    found = {}
    for dirpath, _, filenames in os.walk(cache / "objects"):
        for name in filenames:
            path = Path(dirpath) / name
            found[str(path.relative_to(cache))] = path.read_bytes()
    return found


EXPECTED_CACHE = {
    "objects/thor/v1/a.txt": b"alpha",
    "objects/thor/v1/sub/b.txt": b"beta",
}


def _published(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v1", FILES)
    assert {k: v for k, v in _cache_files(dirs.cache).items() if not k.split("/")[-1].startswith(".")} == (
        EXPECTED_CACHE
    )


def _user_files(cache: Path) -> dict[str, bytes]:
    return {k: v for k, v in _cache_files(cache).items() if not k.split("/")[-1].startswith(".")}


@pytest.mark.parametrize(
    "links",
    ["cache", "cache/objects/..", "cache/objects", "cache/objects/thor/v1", "cache/new/dir", "."],
)
def test_links_overlapping_the_cache_is_refused_and_the_cache_kept(
    dirs: Dirs, tmp_path: Path, links: str
) -> None:
    _published(dirs)
    result = run_cli(*dirs.args("--version", "objects/thor=v1", scratch=False, links=tmp_path / links))
    assert result.code == 2
    assert result.err.count("\n") == 1 and "--links" in result.err and "--cache" in result.err
    assert _user_files(dirs.cache) == EXPECTED_CACHE
    assert not (dirs.cache / "new").exists()
    assert (dirs.cache / "objects" / "thor").is_dir() and not (dirs.cache / "objects" / "thor").is_symlink()


def test_links_through_a_symlink_into_the_cache_is_refused(dirs: Dirs, tmp_path: Path) -> None:
    _published(dirs)
    os.symlink(dirs.cache, tmp_path / "alias")
    result = run_cli(*dirs.args("--version", "objects/thor=v1", scratch=False, links=tmp_path / "alias"))
    assert result.code == 2 and "--links" in result.err
    assert _user_files(dirs.cache) == EXPECTED_CACHE


@pytest.mark.parametrize("scratch", ["cache", "cache/scratch", "."])
def test_scratch_overlapping_the_cache_is_refused(dirs: Dirs, tmp_path: Path, scratch: str) -> None:
    _published(dirs)
    args = [
        "prepare",
        "--cache",
        str(dirs.cache),
        "--links",
        str(dirs.links),
        "--scratch",
        str(tmp_path / scratch),
    ]
    result = run_cli(*args, "--version", "objects/thor=v1", "--scratch-max-bytes", "0")
    assert result.code == 2
    assert "--scratch" in result.err and "--cache" in result.err
    assert _user_files(dirs.cache) == EXPECTED_CACHE
    assert not dirs.links.exists()


def test_env_file_inside_the_cache_is_refused(dirs: Dirs) -> None:
    _published(dirs)
    env = dirs.cache / "objects" / "env.sh"
    result = run_cli(*dirs.args("--version", "objects/thor=v1", "--env-file", str(env), scratch=False))
    assert result.code == 2 and "--env-file" in result.err
    assert not env.exists()


def _ref(dirs: Dirs, strategy: str) -> None:
    write_ref(dirs.cache, "pod", [RefEntry("objects", "thor", "v1", link_strategy=strategy)])


@pytest.mark.parametrize("strategy", ["directory", "perFile"])
def test_a_user_directory_at_the_link_path_is_kept_and_refused(dirs: Dirs, strategy: str) -> None:
    _published(dirs)
    _ref(dirs, strategy)
    mine = dirs.links / "objects" / "thor"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("x\n")
    result = run_cli(*dirs.args("--ref", "pod", scratch=False))
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert str(mine) in result.err and "remove it or choose another --links" in result.err
    assert (mine / "notes.txt").read_text() == "x\n"
    assert not (dirs.links / ".dscache-links.json").exists()


@pytest.mark.parametrize("strategy", ["directory", "perFile"])
def test_a_user_file_or_foreign_symlink_at_the_link_path_is_kept(
    dirs: Dirs, tmp_path: Path, strategy: str
) -> None:
    _published(dirs)
    _ref(dirs, strategy)
    (dirs.links / "objects").mkdir(parents=True)
    (dirs.links / "objects" / "thor").write_text("mine\n")
    result = run_cli(*dirs.args("--ref", "pod", scratch=False))
    assert result.code == 2 and "a regular file" in result.err
    assert (dirs.links / "objects" / "thor").read_text() == "mine\n"
    (dirs.links / "objects" / "thor").unlink()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", dirs.links / "objects" / "thor")
    result = run_cli(*dirs.args("--ref", "pod", scratch=False))
    assert result.code == 2 and "symlink" in result.err
    assert os.readlink(dirs.links / "objects" / "thor") == str(tmp_path / "elsewhere")


def test_an_empty_directory_or_an_own_link_without_state_is_replaced(dirs: Dirs) -> None:
    _published(dirs)
    (dirs.links / "objects" / "thor").mkdir(parents=True)
    assert run_cli(*dirs.args("--version", "objects/thor=v1", scratch=False)).code == 0
    assert (dirs.links / "objects" / "thor" / "a.txt").read_bytes() == b"alpha"
    (dirs.links / ".dscache-links.json").unlink()
    _ref(dirs, "perFile")
    assert run_cli(*dirs.args("--ref", "pod", scratch=False)).code == 0
    tree = dirs.links / "objects" / "thor"
    assert tree.is_dir() and not tree.is_symlink() and os.path.islink(tree / "a.txt")
    (dirs.links / ".dscache-links.json").unlink()
    _ref(dirs, "directory")
    assert run_cli(*dirs.args("--ref", "pod", scratch=False)).code == 0
    assert os.readlink(tree) == "../../cache/objects/thor/v1"


def test_a_stale_slot_now_holding_user_data_is_left_alone(dirs: Dirs) -> None:
    _published(dirs)
    publish_version(dirs.cache, "objects/odin=v1", {"o.txt": b"o"})
    both = ("--version", "objects/thor=v1", "--version", "objects/odin=v1")
    assert run_cli(*dirs.args(*both, scratch=False)).code == 0
    odin = dirs.links / "objects" / "odin"
    odin.unlink()
    odin.mkdir()
    (odin / "notes.txt").write_text("keep\n")
    assert run_cli(*dirs.args("--version", "objects/thor=v1", scratch=False)).code == 0
    assert (odin / "notes.txt").read_text() == "keep\n"
    assert (dirs.links / "objects" / "thor" / "a.txt").read_bytes() == b"alpha"


def test_a_user_file_where_a_link_parent_belongs_is_kept(dirs: Dirs) -> None:
    _published(dirs)
    dirs.links.mkdir()
    (dirs.links / "objects").write_text("mine\n")
    result = run_cli(*dirs.args("--version", "objects/thor=v1", scratch=False))
    assert result.code == 2
    assert f"a parent directory of {dirs.links / 'objects' / 'thor'} is a file" in result.err
    assert (dirs.links / "objects").read_text() == "mine\n"


def test_a_version_nested_in_another_ones_link_is_refused_and_the_cache_kept(dirs: Dirs) -> None:
    outer = publish_version(dirs.cache, "objects/a=v1", {"x.txt": b"x"})
    publish_version(dirs.cache, "objects/a/b=v1", {"y.txt": b"y"})
    result = run_cli(*dirs.args("--version", "objects/a=v1", "--version", "objects/a/b=v1", scratch=False))
    assert result.code == 2
    assert "objects/a/b=v1 would be linked inside the link of objects/a=v1" in result.err
    assert sorted(os.listdir(outer)) == [".dscache-complete.json", ".dscache-inventory.json", "x.txt"]


def test_switching_to_a_nested_version_replaces_the_outer_link_not_the_cache(dirs: Dirs) -> None:
    outer = publish_version(dirs.cache, "objects/a=v1", {"x.txt": b"x"})
    publish_version(dirs.cache, "objects/a/b=v1", {"y.txt": b"y"})
    assert run_cli(*dirs.args("--version", "objects/a=v1", scratch=False)).code == 0
    assert run_cli(*dirs.args("--version", "objects/a/b=v1", scratch=False)).code == 0
    assert (dirs.links / "objects" / "a" / "b" / "y.txt").read_bytes() == b"y"
    assert not (dirs.links / "objects" / "a").is_symlink()
    assert sorted(os.listdir(outer)) == [".dscache-complete.json", ".dscache-inventory.json", "x.txt"]


def test_a_user_symlink_above_the_link_path_is_not_followed(dirs: Dirs, tmp_path: Path) -> None:
    _published(dirs)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "thor").mkdir(parents=True)
    dirs.links.mkdir()
    os.symlink(elsewhere, dirs.links / "objects")
    result = run_cli(*dirs.args("--version", "objects/thor=v1", scratch=False))
    assert result.code == 2
    assert f"{dirs.links / 'objects'} is a symlink" in result.err
    assert os.listdir(elsewhere) == ["thor"] and os.listdir(elsewhere / "thor") == []
