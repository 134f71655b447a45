"""Names that say the wrong thing: extras `--repair` removes are named; control characters in names
are refused by install and publish alike and printed escaped (h6-input, findings 6c and 6d)."""

from __future__ import annotations

from pathlib import Path

from tests.dscache.cli.cli_helpers import run

VERSION = "objects/x=v1"


def _installed(tmp_path: Path) -> tuple[Path, list[str]]:
    remote = tmp_path / "r" / "objects" / "x" / "v1"
    remote.mkdir(parents=True)
    (remote / "a.txt").write_text("a\n")
    cache = tmp_path / "c"
    argv = ["install", "-q", "--cache", str(cache), "--source", f"file://{tmp_path}/r", "--layout", "Files"]
    assert run(*argv, "--version", VERSION).code == 0
    return cache, [*argv, "--version", VERSION]


def test_repair_names_the_files_it_removes_that_dscache_did_not_install(tmp_path: Path) -> None:
    cache, argv = _installed(tmp_path)
    version = cache / "objects" / "x" / "v1"
    version.chmod(0o755)
    (version / "mine.txt").write_text("mine\n")
    (version / "two\nlines").write_text("z")
    version.chmod(0o555)
    result = run(*argv, "--repair")
    assert result.code == 0
    assert result.err.splitlines() == [
        "dscache: warning: --repair replaces objects/x=v1 with a fresh copy of what the remote has: the 2 "
        "file(s) in it that dscache did not install are removed with the damaged copy (mine.txt, two\\nlines)"
    ]
    assert sorted(p.name for p in version.iterdir() if not p.name.startswith(".")) == ["a.txt"]


def test_verify_prints_a_name_with_a_line_break_escaped_on_one_line(tmp_path: Path) -> None:
    cache, _ = _installed(tmp_path)
    version = cache / "objects" / "x" / "v1"
    version.chmod(0o755)
    (version / "two\nlines").write_text("z")
    version.chmod(0o555)
    result = run("verify", "--cache", str(cache))
    assert "  extra: two\\nlines" in result.err.splitlines()


def test_a_files_install_refuses_a_control_character_in_a_name_as_publish_does(tmp_path: Path) -> None:
    remote = tmp_path / "r" / "objects" / "x" / "v1"
    remote.mkdir(parents=True)
    (remote / "ok.txt").write_text("a\n")
    (remote / "bad\nname").write_text("b\n")
    cache = tmp_path / "c"
    result = run(
        "install", "--cache", str(cache), "--source", f"file://{tmp_path}/r", "--layout", "Files",
        "--version", VERSION,
    )  # fmt: skip
    assert result.code != 0 and len(result.lines) == 1
    assert (
        "remote file 'bad\\nname' rejected: name holds the control character \\n: control characters"
        in (result.lines[0])
    )
    assert not (cache / "objects").exists()


def test_publish_refuses_a_tab_in_a_name_by_the_same_rule(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a\tb.txt").write_text("x\n")
    result = run("publish", str(tree), "--to", f"file://{tmp_path}/remote", "--version", VERSION)
    assert result.code == 2 and len(result.lines) == 1
    assert "file name 'a\\tb.txt' holds the control character \\t: control characters" in result.lines[0]
    assert not (tmp_path / "remote" / "objects").exists()
