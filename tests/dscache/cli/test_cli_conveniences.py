"""What users of this kind of tool expect: `python -m dscache`, `-q`/`-v` everywhere, one message
prefix, retry warnings as log lines with a level, and help with examples and the environment read."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dscache import __version__
from dscache.api.names import VersionKey
from dscache.cli.app import COMMANDS, build_parser
from tests.dscache.cli.cli_helpers import run, run_process
from tests.dscache.prepare.prepare_helpers import publish_version
from tests.factories import make_tree, publish_archives
from tests.servers.files import FileServer

ROOT = Path(__file__).resolve().parents[3]
KEY = VersionKey("objects", "toys", "v1")
# The least each command needs to parse.
MINIMAL = {
    "install": ["--cache", "c", "--source", "file:///r", "--version", str(KEY)],
    "prepare": ["--cache", "c", "--links", "l", "--version", str(KEY)],
    "status": ["--cache", "c"],
    "verify": ["--cache", "c"],
    "gc": ["--cache", "c", "--keep", "1"],
    "release": ["--cache", "c", "--ref", "r"],
    "publish": ["d", "--to", "file:///r", "--version", str(KEY)],
    "ls-remote": ["file:///r"],
    "demo": [],
    "completion": ["bash"],
}


def test_python_dash_m_dscache_is_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dscache", "--version"], capture_output=True, text=True, check=False
    )
    assert (proc.returncode, proc.stdout) == (0, f"dscache {__version__}\n")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_takes_quiet_and_verbose(command: str) -> None:
    assert set(MINIMAL) == set(COMMANDS)  # a new command must be listed here
    parser = build_parser(command)
    for flags, level in ((["-q"], -1), (["--quiet"], -1), (["-v"], 1), (["-v", "-v"], 2), ([], 0)):
        args = parser.parse_args([command, *MINIMAL[command], *flags])
        assert args.verbose - args.quiet == level, (command, flags)
    assert parser.parse_args(["-v", command, *MINIMAL[command]]).verbose == 1


def test_quiet_and_verbose_change_what_install_and_prepare_say(tmp_path: Path) -> None:
    publish_archives(make_tree(tmp_path / "tree", {"a/x.txt": 3000}), tmp_path / "remote", KEY, 4096)
    argv = ["install", "--source", f"file://{tmp_path}/remote", "--version", str(KEY)]
    quiet = run_process(*argv, "--cache", str(tmp_path / "c1"), "-q")
    assert (quiet.code, quiet.err) == (0, "")
    normal = run_process(*argv, "--cache", str(tmp_path / "c2"))
    assert normal.code == 0 and "dscache: installing 1 version(s)" in normal.err
    assert not any(line.startswith("dscache: debug:") for line in normal.err.splitlines())
    verbose = run_process(*argv, "--cache", str(tmp_path / "c3"), "-v")
    assert verbose.code == 0
    assert f"dscache: debug: installing from file://{tmp_path}/remote into {tmp_path}/c3" in verbose.err

    cache = tmp_path / "c1"
    prep = ["prepare", "--cache", str(cache), "--links", str(tmp_path / "l"), "--version", str(KEY)]
    scratch = ["--scratch", str(tmp_path / "scratch")]
    said = run(*prep, *scratch)
    assert said.code == 0 and f"dscache: {KEY}: copied to scratch" in said.err
    assert run(*prep, "--scratch", str(tmp_path / "s2"), "-q").err == ""
    debug = run(*prep, *scratch, "-v")
    assert (
        f"dscache: debug: {KEY}: directory link to {tmp_path}/scratch/objects/toys/v1 (scratch)" in debug.err
    )


def test_every_message_has_the_one_prefix(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    publish_version(cache, str(KEY), {"f": b"1"})
    tree = make_tree(tmp_path / "tree", {"a.txt": 10})
    prepare = ["prepare", "--cache", str(cache), "--links", str(tmp_path / "l")]
    results = [
        run(*prepare, "--version", "objects/none=v1"),
        run(*prepare, "--version", "objects/thor=../x"),
        run(*prepare, "--version", str(KEY), "--scratch", str(tree / "a.txt")),  # unusable: a warning
        run("publish", str(tree), "--to", "http://example.com/x", "--version", str(KEY)),
        run("publish", str(tree), "--to", f"file://{tmp_path}/remote", "--version", str(KEY), "-v"),
        run("publish", str(tree), "--to", f"file://{tmp_path}/remote", "--version", str(KEY)),
        run("install", "--cache", str(cache), "--source", f"file://{tmp_path}/remote", "--version", str(KEY)),
    ]  # fmt: skip
    assert [r.code for r in results] == [3, 2, 0, 2, 0, 1, 0]
    assert results[0].err.startswith("dscache: error: timed out after 0s waiting for 1 version(s)")
    assert "dscache: warning: " in results[2].err
    assert results[5].err.startswith("dscache: error: ") and "already published" in results[5].err
    for result in results:
        for line in result.err.splitlines():
            assert line.startswith(("dscache: ", "  ")), line  # continuation lines are indented


def test_retry_warnings_are_log_lines_with_a_level(http_server: FileServer, tmp_path: Path) -> None:
    publish_archives(make_tree(tmp_path / "tree", {"a/x.bin": 9000}), http_server.root, KEY, 4096)
    for extra in ([], ["-q"], ["--json"]):
        http_server.faults.status(503, times=2, path="*.tar.zst")
        cache = tmp_path / f"cache{len(extra)}{''.join(extra)}"
        argv = ["install", "--cache", str(cache), "--source", http_server.url, "--version", str(KEY), *extra]
        result = run_process(*argv)
        assert result.code == 0, result
        retries = [line for line in result.err.splitlines() if "retry" in line]
        assert len(retries) == 2, result.err
        for line in retries:
            assert re.fullmatch(
                r"dscache: warning: .*\.tar\.zst.*HTTP 503.*; retry [12] in \d+\.\d\ds", line
            ), line


def _source_env_names() -> set[str]:
    """Every DSCACHE_* variable the data plane's code names (the operator's have their own prefix)."""
    names: set[str] = set()
    for path in (ROOT / "initcontainer" / "dscache").rglob("*.py"):
        names |= set(re.findall(r"\bDSCACHE_[A-Z_]*[A-Z]\b", path.read_text()))
    per_source = {"DSCACHE_ROOT", "DSCACHE_MANIFEST", "DSCACHE_OBJECTS_THOR"}  # exported to pods, not read
    return names - per_source


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_has_examples_and_the_environment(command: str) -> None:
    result = run(command, "--help")
    assert result.code == 0
    assert "\nExamples:\n  " in result.out and f"  dscache {command} " in result.out.split("Examples:")[1]
    assert "\nEnvironment:" in result.out


def test_install_help_names_every_variable_it_reads() -> None:
    text = run("install", "--help").out.split("Environment:")[1]
    names = _source_env_names()
    assert {"DSCACHE_RETRY_ATTEMPTS", "DSCACHE_READ_TIMEOUT", "DSCACHE_KUBE_API_URL"} <= names
    for name in (*names, "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "HF_TOKEN", "HF_ENDPOINT", "HTTPS_PROXY",
                 "LIBARCHIVE"):  # fmt: skip
        assert f"  {name} " in text, name
