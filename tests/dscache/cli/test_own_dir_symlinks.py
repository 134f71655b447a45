"""One rule for status, verify, gc, release, install and prepare: a symlink where dscache keeps its own
directory (a version's data type, source or version directory, `.dscache` and what is in it) is
refused with one line naming it and what to do; nothing follows it, nothing is deleted through it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from tests.factories import make_tree, tree_snapshot

KEY = VersionKey("objects", "t", "v1")
LEVELS = {
    "data-type": "objects",
    "source": "objects/t",
    "version": "objects/t/v1",
    "control": ".dscache",
    "refs": ".dscache/refs",
}


def commands(cache: Path, remote: Path, links: Path) -> dict[str, list[str]]:
    install = ["install", "-q", "--cache", str(cache), "--source", f"file://{remote}", "--layout", "Files"]
    return {
        "status": ["status", "--cache", str(cache)],
        "verify": ["verify", "--cache", str(cache)],
        "gc": ["gc", "--cache", str(cache), "--keep", "0"],
        "release": ["release", "--cache", str(cache), "--ref", "default"],
        "install": [*install, "--version", str(KEY)],
        "prepare-ref": ["prepare", "--cache", str(cache), "--links", str(links), "--ref", "default"],
        "prepare-version": ["prepare", "--cache", str(cache), "--links", str(links), "--version", str(KEY)],
    }


@pytest.mark.parametrize("level", list(LEVELS))
@pytest.mark.parametrize(
    "command", ["status", "verify", "gc", "release", "install", "prepare-ref", "prepare-version"]
)
def test_a_symlinked_own_directory_is_refused_by_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], level: str, command: str
) -> None:
    remote = make_tree(tmp_path / "remote", {f"{KEY.rel}/a/x.txt": 10, f"{KEY.rel}/b.txt": 20})
    cache, links = tmp_path / "C", tmp_path / "links"
    argv = commands(cache, remote, links)
    assert main(argv["install"]) == 0
    moved = tmp_path / "elsewhere" / Path(LEVELS[level]).name
    moved.parent.mkdir()
    shutil.move(cache / LEVELS[level], moved)
    (cache / LEVELS[level]).symlink_to(moved)
    before = tree_snapshot(moved)
    capsys.readouterr()

    assert main(argv[command]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert f"{cache / LEVELS[level]}: a symlink (to {moved})" in lines[0]
    assert f"mv {moved} {cache / LEVELS[level]}" in lines[0]
    assert tree_snapshot(moved) == before  # nothing deleted or changed through the link
    assert (cache / LEVELS[level]).is_symlink()
    assert not links.exists() or not any(links.iterdir())


def test_a_symlink_outside_dscache_own_directories_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = make_tree(tmp_path / "remote", {f"{KEY.rel}/a/x.txt": 10})
    cache = tmp_path / "C"
    argv = commands(cache, remote, tmp_path / "links")
    assert main(argv["install"]) == 0
    (tmp_path / "notes").mkdir()
    (cache / "notes").symlink_to(tmp_path / "notes")  # the user's, beside the versions
    assert main(argv["status"]) == 0
    assert main(argv["verify"]) == 0
    assert (cache / "notes").is_symlink()
