"""What dscache may replace at a version's path: only what it can prove its own. A user's directory,
file or symlink there is refused before any transfer and left as it was; a version whose completion
record was truncated is reported damaged and published afresh (the old tree goes to the trash)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree

VERSION = "objects/other=v1"


def _remote(tmp_path: Path) -> Path:
    remote = tmp_path / "remote"
    make_tree(remote / "objects" / "other" / "v1", {"a.txt": 300, "b/c.bin": 5000})
    return remote


def _install(cache: Path, remote: Path, *more: str) -> tuple[int, str, str]:
    argv = ["--cache", str(cache), "--source", f"file://{remote}", "--layout", "Files", "--version", VERSION]
    result = run("install", *argv, *more)
    return result.code, result.out, result.err


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_install_refuses_a_user_directory_at_the_version_path_and_keeps_it(tmp_path: Path) -> None:
    remote, cache = _remote(tmp_path), tmp_path / "cache"
    mine = cache / "objects" / "other" / "v1"
    mine.mkdir(parents=True)
    (mine / "mine.txt").write_text("precious\n")
    code, _out, err = _install(cache, remote)
    assert code == 1
    assert f"{mine}: a directory dscache did not create" in err
    assert "Traceback" not in err
    assert _files(mine) == {"mine.txt": b"precious\n"}
    assert not (cache / ".dscache" / "staging" / "objects" / "other" / "v1").exists()  # nothing fetched


@pytest.mark.parametrize("where", ["objects/other/v1", "objects/other", "objects"])
@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_install_refuses_a_file_or_symlink_at_a_level_of_the_version_path(
    tmp_path: Path, where: str, kind: str
) -> None:
    remote, cache = _remote(tmp_path), tmp_path / "cache"
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("keep\n")
    spot = cache / where
    spot.parent.mkdir(parents=True, exist_ok=True)
    if kind == "file":
        spot.write_text("user file\n")
    else:
        spot.symlink_to(target)
    code, _out, err = _install(cache, remote)
    assert code == 1
    assert f"{spot}: a {kind} dscache did not create" in err
    assert "Traceback" not in err
    if kind == "file":
        assert spot.read_text() == "user file\n"
    else:
        assert os.readlink(spot) == str(target)
    assert _files(target) == {"keep.txt": b"keep\n"}


def test_install_into_a_foreign_tree_adds_its_version_and_touches_nothing_else(tmp_path: Path) -> None:
    remote, cache = _remote(tmp_path), tmp_path / "cache"
    make_tree(cache / "objects" / "other" / "v0", {"x.bin": 100})
    make_tree(cache / "scenes" / "house" / "v2", {"y.bin": 200})
    before = _files(cache)
    code, _out, err = _install(cache, remote)
    assert code == 0, err
    after = _files(cache)
    assert {k: v for k, v in after.items() if k in before} == before
    assert (cache / "objects" / "other" / "v1" / "a.txt").stat().st_size == 300


def test_install_replaces_an_empty_directory_at_the_version_path(tmp_path: Path) -> None:
    remote, cache = _remote(tmp_path), tmp_path / "cache"
    (cache / "objects" / "other" / "v1").mkdir(parents=True)
    code, _out, err = _install(cache, remote)
    assert code == 0, err
    assert (cache / "objects" / "other" / "v1" / "b" / "c.bin").stat().st_size == 5000


@pytest.mark.parametrize("repair", [False, True])
def test_a_truncated_completion_record_is_damaged_and_published_afresh(tmp_path: Path, repair: bool) -> None:
    remote, cache = _remote(tmp_path), tmp_path / "cache"
    assert _install(cache, remote)[0] == 0
    version = cache / "objects" / "other" / "v1"
    record = version / ".dscache-complete.json"
    os.chmod(record, 0o644)
    record.write_text('{"trunc')
    old_inode = os.stat(version / "a.txt").st_ino

    status = run("status", "--cache", str(cache), "--json")
    assert status.code == 0, status
    assert json.loads(status.out)["damaged"] == [str(version)]
    assert f"{record}: unreadable completion record" in status.err

    verify = run("verify", "--cache", str(cache))
    assert verify.code == 1, verify
    assert f"DAMAGED  {record}: unreadable completion record" in verify.err
    assert "0 of 1 version(s) intact" in verify.out

    code, _out, err = _install(cache, remote, *(["--repair"] if repair else []))
    assert code == 0, err
    assert "nothing to repair" not in err
    assert json.loads(record.read_text())["version"] == "v1"
    assert (version / "a.txt").stat().st_size == 300
    assert run("verify", "--cache", str(cache)).code == 0
    if not repair:  # the fresh copy is new files; the damaged tree went to the trash, unmodified
        assert os.stat(version / "a.txt").st_ino != old_inode


def test_a_failed_install_leaves_no_cache_dir_behind(tmp_path: Path) -> None:
    cache = tmp_path / "new" / "cache"
    code, _out, err = _install(cache, tmp_path / "no-such-remote")
    assert code != 0
    assert "Traceback" not in err
    assert not (tmp_path / "new").exists()


def test_a_failed_install_leaves_no_control_dir_in_an_existing_dir(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "notes.txt").write_text("mine\n")
    code, _out, _err = _install(cache, tmp_path / "no-such-remote")
    assert code != 0
    assert sorted(p.name for p in cache.iterdir()) == ["notes.txt"]


def test_a_team_worker_refuses_a_user_directory_at_the_version_path(tmp_path: Path) -> None:
    remote, cache = _remote(tmp_path), tmp_path / "cache"
    mine = cache / "objects" / "other" / "v1"
    mine.mkdir(parents=True)
    (mine / "mine.txt").write_text("precious\n")
    code, _out, err = _install(cache, remote, "--workers", "2", "--worker-index", "0")
    assert code == 1, err
    assert f"{mine}: a directory dscache did not create" in err
    assert _files(mine) == {"mine.txt": b"precious\n"}
