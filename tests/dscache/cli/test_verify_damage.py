"""Damage `dscache verify` must find besides missing files and changed sizes: permission bits that no
longer are the ones dscache freezes a version with, directories the user cannot list (named with
their version), and bytes changed in place (`--content`); and `install --repair` must publish a fresh
copy without them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import as_nobody, run, world_traversable_dir
from tests.factories import make_tree, publish_archives

KEY = VersionKey("models", "llm", "v1")
FILES = {"weights.bin": 70_000, "config.json": 300, "sub dir/tok.txt": 900}


def _installed(base: Path) -> tuple[Path, list[str], Path]:
    """(remote tree, install argv, published version dir) of KEY, installed from a Files remote."""
    remote = base / "remote"
    tree = make_tree(remote / KEY.rel, FILES)
    cache = base / "cache"
    argv = ["--cache", str(cache), "--source", f"file://{remote}", "--layout", "Files", "--version", str(KEY)]
    assert run("install", *argv).code == 0
    return tree, argv, CachePaths(cache).version_dir(KEY)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _report(argv: list[str], *more: str) -> tuple[int, dict[str, object]]:
    result = run("verify", argv[0], argv[1], "--json", *more)
    [version] = json.loads(result.out)["versions"]
    return result.code, version


def test_verify_reports_changed_modes_and_repair_publishes_a_copy_with_dscache_modes(tmp_path: Path) -> None:
    tree, argv, version = _installed(tmp_path)
    inode = os.stat(version / "sub dir/tok.txt").st_ino
    os.chmod(version / "config.json", 0o000)
    os.chmod(version / "sub dir", 0o700)
    os.chmod(version / "weights.bin", 0o777)

    code, report = _report(argv)
    assert code == 1
    assert report["modes"] == [
        {"path": "config.json", "mode": "0000", "want": "0444"},
        {"path": "sub dir", "mode": "0700", "want": "0555"},
        {"path": "weights.bin", "mode": "0777", "want": "0444"},
    ]
    text = run("verify", *argv[:2])
    assert "  mode: sub dir (0700, want 0555: not readable by all, writable)" in text.err
    assert "  mode: weights.bin (0777, want 0444: writable)" in text.err

    repair = run("install", *argv, "--repair", "--json")
    assert repair.code == 0
    [done] = [e for e in map(json.loads, repair.out.splitlines()) if e.get("event") == "done"]
    assert done["downloadedBytes"] == 0  # the bytes were intact: copied with dscache's modes
    assert run("verify", *argv[:2]).code == 0
    assert {p: _mode(version / p) for p in FILES} == dict.fromkeys(FILES, 0o444)
    assert _mode(version / "sub dir") == 0o555 and _mode(version) == 0o555
    assert {p: (version / p).read_bytes() for p in FILES} == {p: (tree / p).read_bytes() for p in FILES}
    assert os.stat(version / "sub dir/tok.txt").st_ino == inode  # intact: linked, not fetched


def test_verify_content_finds_bytes_changed_in_place_and_repair_content_fetches_them(tmp_path: Path) -> None:
    tree, argv, version = _installed(tmp_path)
    fd = os.open(version / "weights.bin", os.O_WRONLY)  # root: same size, inode and mode
    os.pwrite(fd, b"XXXX", 4096)
    os.close(fd)

    assert run("verify", *argv[:2]).code == 0  # by default sizes and modes only: cheap
    code, report = _report(argv, "--content")
    assert code == 1
    assert report["changed"] == ["weights.bin"] and report["hashedFiles"] == 3
    assert run("install", *argv, "--content").code == 2

    assert run("install", *argv, "--repair", "--content").code == 0
    assert run("verify", *argv[:2], "--content").code == 0
    assert (version / "weights.bin").read_bytes() == (tree / "weights.bin").read_bytes()


def test_verify_as_another_user_names_the_version_of_a_directory_it_cannot_list() -> None:
    with world_traversable_dir() as base:
        _tree, argv, version = _installed(base)
        os.chmod(version / "sub dir", 0o700)

        result = as_nobody("verify", *argv[:2])
        assert result.code == 1
        assert f"DIFFERS  {KEY}" in result.err
        assert "  unreadable: sub dir (Permission denied)" in result.err
        assert "missing" not in result.err  # what it could not list is not reported gone
        assert "Traceback" not in result.err


def test_verify_content_says_which_files_it_could_only_check_by_size(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    publish_archives(make_tree(tmp_path / "data", {"a.txt": 300, "b/c.bin": 5000}), remote, KEY, 4096)
    cache = tmp_path / "cache"
    source = ["--source", f"file://{remote}", "--version", str(KEY)]
    assert run("install", "--cache", str(cache), *source).code == 0

    result = run("verify", "--cache", str(cache), "--content")
    assert result.code == 0
    # a.txt and b/c.bin hashed; two extraction flags, the manifest and the two molmospaces metadata files
    assert result.out.splitlines()[-1] == (
        "1 of 1 version(s) intact (2 file(s) hashed; 5 file(s) without a digest of their own checked by size)"
    )
