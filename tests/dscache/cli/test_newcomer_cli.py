"""What a newcomer ran into on the command line: an empty path taken for the current directory,
abbreviated flags, a version-argument error naming the wrong flag, `--layout` spelled differently from
the manifest, an Archives install of a plain tree with no hint, pattern flags answered in spec field
names, and raw event lines in the human output. Each gives one line naming the flag, or a readable line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dscache.cli.render import PlainSink
from tests.dscache.cli.cli_helpers import assert_one_clean_line, run
from tests.factories import make_tree

V = "objects/toys=v1"


def _plain_tree(remote: Path) -> str:
    make_tree(remote / "objects" / "toys" / "v1", {f"sub/f{i}.txt": 10 + i for i in range(5)})
    return f"file://{remote}"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["install", "--cache", "", "--source", "file:///nowhere", "--version", V], "--cache"),
        (["install", "-f", "", "--cache", "c"], "-f/--file"),
        (["prepare", "--cache", "c", "--links", "", "--version", V], "--links"),
        (["prepare", "--cache", "", "--links", "l", "--version", V], "--cache"),
        (["prepare", "--cache", "c", "--links", "l", "--version", V, "--env-file", ""], "--env-file"),
        (["gc", "--cache", "", "--keep", "1"], "--cache"),
        (["release", "--cache", "", "--ref", "r"], "--cache"),
        (["verify", "--cache", ""], "--cache"),
        (["status", "--cache", ""], "--cache"),
        (["status", "--scratch", ""], "--scratch"),
        (["ls-remote", "file:///nowhere", "--cache", ""], "--cache"),
        (["publish", "", "--to", "file:///nowhere", "--version", V], "DIR"),
    ],
)
def test_an_empty_path_is_refused_naming_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], flag: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c").mkdir()
    assert_one_clean_line(run(*argv), 2, f"argument {flag}: empty path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # nothing written into the cwd


@pytest.mark.parametrize(
    ("argv", "unknown"),
    [
        (["prepare", "--cache", "c", "--links", "l", "--version", V, "--link", "PerFile"], "--link PerFile"),
        (["install", "--cache", "c", "--source", "file:///nowhere", "--version", V, "--dry"], "--dry"),
        (["gc", "--cache", "c", "--keep", "1", "--prot", "o/s=v"], "--prot o/s=v"),
    ],
)
def test_abbreviated_flags_are_not_taken_for_longer_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], unknown: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert_one_clean_line(run(*argv), 2, f"unrecognized arguments: {unknown}")


@pytest.mark.parametrize("command", ["gc", "release"])
def test_a_malformed_protect_names_protect(tmp_path: Path, command: str) -> None:
    extra = ["--keep", "1"] if command == "gc" else ["--ref", "r"]
    result = run(command, "--cache", str(tmp_path), *extra, "--protect", "objects/cats")
    assert_one_clean_line(result, 2, "--protect 'objects/cats' must look like DATA_TYPE/SOURCE=VERSION")
    assert "--version" not in result.err


@pytest.mark.parametrize("spelling", ["Files", "files", "FILES"])
def test_layout_takes_the_manifest_spelling_and_lower_case(tmp_path: Path, spelling: str) -> None:
    url = _plain_tree(tmp_path / "remote")
    result = run(
        "install", "--cache", str(tmp_path / "c"), "--source", url, "--layout", spelling, "--version", V
    )
    assert result.code == 0, result
    assert (tmp_path / "c" / "objects" / "toys" / "v1" / "sub" / "f0.txt").stat().st_size == 10


def test_layout_help_shows_the_manifest_spelling() -> None:
    result = run("install", "--help")
    assert result.code == 0
    assert "--layout {Archives,Files}" in " ".join(result.out.split())


def test_a_bad_layout_names_the_choices(tmp_path: Path) -> None:
    result = run(
        "install", "--cache", str(tmp_path), "--source", "file:///x", "--layout", "tree", "--version", V
    )
    assert_one_clean_line(result, 2, "argument --layout: invalid choice: 'tree'", "Archives", "Files")


def test_a_plain_tree_installed_as_archives_says_to_use_files(tmp_path: Path) -> None:
    url = _plain_tree(tmp_path / "remote")
    result = run("install", "--cache", str(tmp_path / "c"), "--source", url, "--version", V)
    assert result.code == 1, result
    assert "Traceback" not in result.err
    [line] = [x for x in result.err.splitlines() if x.startswith("dscache: error:")]
    assert "mjthor_resource_file_to_size_mb.json does not exist" in line
    assert "(layout Archives expects mjthor_resource_file_to_size_mb.json" in line
    assert "for a plain file tree use layout: Files / --layout Files)" in line


@pytest.mark.parametrize("flag", ["--allow-pattern", "--ignore-pattern"])
def test_patterns_without_layout_files_name_the_flags(tmp_path: Path, flag: str) -> None:
    result = run(
        "install",
        "--cache",
        str(tmp_path),
        "--source",
        "hf://datasets/org/repo",
        "--version",
        V,
        flag,
        "*.json",
    )
    assert_one_clean_line(
        result,
        2,
        "--allow-pattern/--ignore-pattern select files of --layout Files; "
        "the Archives layout (the default) installs whole archives",
    )
    assert "spec." not in result.err


def test_a_worker_share_done_is_a_readable_line() -> None:
    out = io.StringIO()
    PlainSink(out, every=0).emit("share_done", {"worker": 1, "workers": 3, "items": 4, "seconds": 2.25})
    assert out.getvalue() == (
        "dscache: worker 1 of 3 done: fetched its 4 item(s) in 2.2s; the last worker to finish publishes\n"
    )


def test_files_layout_progress_counts_files(tmp_path: Path) -> None:
    url = _plain_tree(tmp_path / "remote")
    result = run(
        "install", "--cache", str(tmp_path / "c"), "--source", url, "--layout", "Files", "--version", V
    )
    assert result.code == 0, result
    [progress] = [x for x in result.err.splitlines() if x.startswith("dscache: progress")]
    assert progress.endswith("/5") and " files " in progress and "archives" not in progress, progress
