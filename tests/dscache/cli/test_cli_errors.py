"""The command line never shows a traceback: every bad input gives one line naming what to fix and
the documented exit code (2: usage or validation), for every command that takes the input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from tests.dscache.cli.cli_helpers import (
    NOBODY,
    as_nobody,
    assert_one_clean_line,
    run,
    run_process,
    world_traversable_dir,
)
from tests.factories import make_tree, publish_archives
from tests.servers.files import FileServer

V = "objects/toys=v1"
SRC = ["--source", "file:///nowhere", "--version", V]


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "file").write_text("not a directory")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "something").write_text("x")
    return {"file": str(tmp_path / "file"), "dir": str(tmp_path / "dir"), "tmp": str(tmp_path)}


# (argv, flag named in the message, what the message says) with {file}: a regular file, {dir}: a directory.
WRONG_KIND = [
    (["install", "--cache", "{file}", *SRC], "--cache {file}", "is a regular file, not a directory"),
    (["install", "--cache", "{file}/sub", *SRC], "--cache {file}/sub", "{file} is a regular file"),
    (["install", "--cache", "{tmp}/c", "-f", "{dir}"], "-f {dir}", "is a directory, not a file"),
    (["install", "--cache", "{tmp}/c", "-f", "{tmp}/none.yaml"], "-f {tmp}/none.yaml", "no such file"),
    (["install", "--dry-run", "--cache", "{file}", *SRC], "--cache {file}", "not a directory"),
    (
        ["prepare", "--cache", "{file}", "--links", "{tmp}/l", "--version", V],
        "--cache {file}",
        "not a directory",
    ),
    (
        ["prepare", "--cache", "{tmp}/none", "--links", "{tmp}/l", "--version", V],
        "--cache",
        "no such directory",
    ),
    (
        ["prepare", "--cache", "{dir}", "--links", "{file}", "--version", V],
        "--links {file}",
        "not a directory",
    ),
    (
        ["prepare", "--cache", "{dir}", "--links", "{file}/l", "--version", V],
        "--links {file}/l",
        "regular file",
    ),
    (
        ["prepare", "--cache", "{dir}", "--links", "{tmp}/l", "--version", V, "--env-file", "{dir}"],
        "--env-file {dir}",
        "is a directory, not a file",
    ),
    (
        ["prepare", "--cache", "{dir}", "--links", "{tmp}/l", "--version", V, "--env-file", "{file}/env"],
        "--env-file {file}/env",
        "{file} is a regular file, not a directory",
    ),
    (["status", "--cache", "{file}"], "--cache {file}", "is a regular file, not a directory"),
    (["status", "--cache", "{tmp}/none"], "--cache {tmp}/none", "no such directory"),
    (["status", "--scratch", "{file}"], "--scratch {file}", "is a regular file, not a directory"),
    (["verify", "--cache", "{file}"], "--cache {file}", "is a regular file, not a directory"),
    (["gc", "--cache", "{file}", "--keep", "1"], "--cache {file}", "is a regular file, not a directory"),
    (["release", "--cache", "{file}", "--ref", "r"], "--cache {file}", "is a regular file, not a directory"),
    (["demo", "--dir", "{file}"], "--dir {file}", "is a regular file, not a directory"),
    (["demo", "--dir", "{file}/demo"], "--dir {file}/demo", "{file} is a regular file"),
    (["publish", "{file}", "--to", "file://{tmp}/r", "--version", V], "DIR {file}", "not a directory"),
    (["publish", "{dir}", "--to", "file://{file}", "--version", V], "--to {file}", "not a directory"),
    (
        ["publish", "{dir}", "--to", "file://{tmp}/r", "--version", V, "--work-dir", "{file}"],
        "--work-dir {file}",
        "not a directory",
    ),
]


@pytest.mark.parametrize(("argv", "flag", "says"), WRONG_KIND)
def test_a_path_of_the_wrong_kind_is_one_line_and_exit_2(
    paths: dict[str, str], argv: list[str], flag: str, says: str
) -> None:
    result = run(*(a.format(**paths) for a in argv))
    assert_one_clean_line(result, 2, flag.format(**paths), says.format(**paths))
    assert not (Path(paths["tmp"]) / "r").exists() and not (Path(paths["tmp"]) / "c").exists()


@pytest.fixture
def locked_down() -> Iterator[dict[str, str]]:
    """Root-owned places uid 65534 can read but not write, and some it cannot read at all."""
    with world_traversable_dir() as base:
        ro = base / "ro"
        (ro / "tree").mkdir(parents=True)
        (ro / "tree" / "f.txt").write_text("x")
        (ro / "cache" / ".dscache").mkdir(parents=True)
        for path in (ro, ro / "tree", ro / "cache", ro / "cache" / ".dscache"):
            path.chmod(0o755)
        private = base / "private"
        private.mkdir(mode=0o700)
        (private / "x").write_text("x")
        secret = base / "secret.yaml"
        secret.write_text("kind: DatasetCache\n")
        secret.chmod(0o600)
        writable = base / "mine"
        writable.mkdir()
        os.chown(writable, NOBODY, NOBODY)
        yield {"ro": str(ro), "private": str(private), "secret": str(secret), "mine": str(writable)}


NO_PERMISSION = [
    (["install", "--cache", "{ro}", *SRC], "--cache {ro}", "not writable by user id 65534"),
    (["install", "--cache", "{ro}/new", *SRC], "--cache {ro}/new", "cannot create it: {ro} is not writable"),
    (["install", "--cache", "{mine}/c", "-f", "{secret}"], "-f {secret}", "permission denied"),
    (
        ["prepare", "--cache", "{ro}/cache", "--links", "{ro}/links", "--version", V],
        "--links {ro}/links",
        "cannot create it: {ro} is not writable",
    ),
    (
        ["prepare", "--cache", "{ro}/cache", "--links", "{mine}/l", "--version", V, "--env-file", "{ro}/env"],
        "--env-file {ro}/env",
        "not writable",
    ),
    (
        ["prepare", "--cache", "{private}", "--links", "{mine}/l", "--version", V],
        "--cache",
        "permission denied",
    ),
    (["status", "--cache", "{private}"], "--cache {private}", "permission denied"),
    (["verify", "--cache", "{private}"], "--cache {private}", "permission denied"),
    (["gc", "--cache", "{ro}/cache", "--keep", "0"], "--cache {ro}/cache", "not writable"),
    (["release", "--cache", "{ro}/cache", "--ref", "r"], "--cache {ro}/cache", "not writable"),
    (["demo", "--dir", "{ro}/demo"], "--dir {ro}/demo", "cannot create it: {ro} is not writable"),
    (
        ["publish", "{private}", "--to", "file://{mine}/r", "--version", V],
        "DIR {private}",
        "permission denied",
    ),
    (["publish", "{ro}/tree", "--to", "file://{ro}/r", "--version", V], "--to {ro}/r", "not writable"),
]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to uid 65534 needs root")
@pytest.mark.parametrize(("argv", "flag", "says"), NO_PERMISSION)
def test_no_permission_as_a_non_root_user_is_one_line_and_exit_2(
    locked_down: dict[str, str], argv: list[str], flag: str, says: str
) -> None:
    result = as_nobody(*(a.format(**locked_down) for a in argv))
    assert_one_clean_line(result, 2, flag.format(**locked_down), says.format(**locked_down))
    assert sorted(os.listdir(locked_down["ro"])) == ["cache", "tree"]
    assert os.listdir(Path(locked_down["ro"]) / "cache" / ".dscache") == []


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--dir", "{ro}/demo"],
        ["install", "--cache", "{ro}/cache", *SRC],
        ["prepare", "--cache", "{ro}", "--links", "{ro}/links", "--version", V],
    ],
)
def test_a_read_only_file_system_is_named(tmp_path: Path, argv: list[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    command = " ".join(a.format(ro=ro) for a in argv)
    proc = subprocess.run(
        [
            "unshare",
            "--mount",
            "sh",
            "-c",
            f"mount -t tmpfs -o ro tmpfs {ro} && exec {sys.executable} -m dscache {command}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result_lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert result_lines == [result_lines[0]] and "Traceback" not in proc.stderr
    assert (
        result_lines[0].startswith("dscache: error: ")
        and f"{ro} is on a read-only file system" in proc.stderr
    )


def test_a_directory_that_is_not_a_cache_is_refused_untouched(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "projects" / "a").mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    for argv in (
        ["status", "--cache", str(home)],
        ["status", "--cache", str(home), "--json"],
        ["verify", "--cache", str(home)],
        ["gc", "--cache", str(home), "--keep", "0"],
        ["release", "--cache", str(home), "--ref", "r"],
        ["status", "--scratch", str(home)],
    ):
        result = run(*argv)
        assert result.code == 2, (argv, result)
        message = json.loads(result.out)["message"] if "--json" in argv else result.err
        assert f"{home}: not a dscache " in message and "no .dscache/ directory" in message, message
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before  # no lock, no .dscache


def test_an_empty_volume_is_an_empty_cache(tmp_path: Path) -> None:
    volume = tmp_path / "pvc"
    (volume / "lost+found").mkdir(parents=True)
    status = run("status", "--cache", str(volume), "--json")
    assert status.code == 0 and json.loads(status.out)["versions"] == []
    released = run("release", "--cache", str(volume), "--ref", "ns.gone", "--json")
    assert released.code == 0 and json.loads(released.out)["found"] is False


NUMERIC = [
    (["install", "--cache", "{tmp}/c", *SRC, "--jobs", "0"], "--jobs"),
    (["install", "--cache", "{tmp}/c", *SRC, "--jobs", "65"], "--jobs"),
    (["install", "--cache", "{tmp}/c", *SRC, "--jobs", "2.5"], "--jobs"),
    (["install", "--cache", "{tmp}/c", *SRC, "--lock-timeout", "-1"], "--lock-timeout"),
    (["install", "--cache", "{tmp}/c", *SRC, "--lock-timeout", "nan"], "--lock-timeout"),
    (["prepare", "--cache", "{tmp}", "--links", "{tmp}/l", "--version", V, "--wait", "-5"], "--wait"),
    (["prepare", "--cache", "{tmp}", "--links", "{tmp}/l", "--version", V, "--wait", "-inf"], "--wait"),
    (["prepare", "--cache", "{tmp}", "--links", "{tmp}/l", "--version", V, "--wait", "NaN"], "--wait"),
    (
        ["prepare", "--cache", "{tmp}", "--links", "{tmp}/l", "--version", V, "--scratch-keep-recent", "-1"],
        "--scratch-keep-recent",
    ),
    (
        ["prepare", "--cache", "{tmp}", "--links", "{tmp}/l", "--version", V, "--scratch-max-bytes", "500m"],
        "--scratch-max-bytes",
    ),
    (
        ["prepare", "--cache", "{tmp}", "--links", "{tmp}/l", "--version", V, "--scratch-max-bytes", "-1Gi"],
        "--scratch-max-bytes",
    ),
    (["gc", "--cache", "{tmp}", "--keep", "-1"], "--keep"),
    (["gc", "--cache", "{tmp}", "--keep", "1", "--staging-max-age", "-60"], "--staging-max-age"),
    (["gc", "--cache", "{tmp}", "--keep", "1", "--lock-timeout", "nan"], "--lock-timeout"),
    (["release", "--cache", "{tmp}", "--ref", "r", "--lock-timeout", "-1"], "--lock-timeout"),
    (["publish", "{tmp}", "--to", "file://{tmp}/r", "--version", V, "--level", "23"], "--level"),
    (["publish", "{tmp}", "--to", "file://{tmp}/r", "--version", V, "--threads", "-2"], "--threads"),
    (["publish", "{tmp}", "--to", "file://{tmp}/r", "--version", V, "--archive-size", "500m"], "size '500m'"),
    (["publish", "{tmp}", "--to", "file://{tmp}/r", "--version", V, "--shard-size", "-1"], "size '-1'"),
]


@pytest.mark.parametrize(("argv", "flag"), NUMERIC)
def test_meaningless_numbers_are_refused(tmp_path: Path, argv: list[str], flag: str) -> None:
    result = run(*(a.format(tmp=tmp_path) for a in argv))
    assert_one_clean_line(result, 2, flag)
    assert sorted(os.listdir(tmp_path)) == []


def test_infinity_means_no_limit_where_it_makes_sense(tmp_path: Path) -> None:
    key = VersionKey("objects", "toys", "v1")
    publish_archives(make_tree(tmp_path / "tree", {"a.txt": 10}), tmp_path / "remote", key, 4096)
    cache = str(tmp_path / "cache")
    installed = run("install", "--cache", cache, "--source", f"file://{tmp_path}/remote", "--version", V,
                    "--lock-timeout", "inf")  # fmt: skip
    assert installed.code == 0, installed
    prepared = run(
        "prepare", "--cache", cache, "--links", str(tmp_path / "l"), "--version", V, "--wait", "inf"
    )
    assert prepared.code == 0, prepared
    assert (tmp_path / "l" / "objects" / "toys").is_symlink()


BAD_ENV = [
    ("DSCACHE_RETRY_ATTEMPTS", "abc"),
    ("DSCACHE_RETRY_ATTEMPTS", "nan"),
    ("DSCACHE_RETRY_ATTEMPTS", "inf"),
    ("DSCACHE_RETRY_ATTEMPTS", "0"),
    ("DSCACHE_RETRY_ATTEMPTS", "2.5"),
    ("DSCACHE_RETRY_BASE_DELAY", "-1"),
    ("DSCACHE_RETRY_MAX_DELAY", "inf"),
    ("DSCACHE_RETRY_DEADLINE", "NaN"),
    ("DSCACHE_CONNECT_TIMEOUT", "0"),
    ("DSCACHE_READ_TIMEOUT", "-3"),
    ("DSCACHE_KUBE_API_URL", "api-server:6443"),
]


@pytest.mark.parametrize(("name", "value"), BAD_ENV)
def test_a_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    result = run("install", "--cache", str(tmp_path / "c"), "--source", f"file://{tmp_path}", "--version", V)
    assert_one_clean_line(result, 2, f"{name}={value!r}")
    assert not (tmp_path / "c").exists()


def test_a_bad_environment_value_in_publish_and_demo_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSCACHE_RETRY_ATTEMPTS", "nan")
    tree = make_tree(tmp_path / "tree", {"a.txt": 10})
    result = run("publish", str(tree), "--to", f"file://{tmp_path}/r", "--version", V)
    assert_one_clean_line(result, 2, "DSCACHE_RETRY_ATTEMPTS='nan'")
    assert_one_clean_line(run("demo", "--dir", str(tmp_path / "demo")), 2, "DSCACHE_RETRY_ATTEMPTS='nan'")
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["install", "--json", "--cache", "{tmp}/c", "--source", "file://host/x", "--version", V],
        ["install", "--json", "--cache", "{tmp}/c", *SRC, "--jobs", "-4"],
        ["install", "--json", "--source", "file:///x"],
        ["install", "--json", "--cache", "{tmp}/c", *SRC, "--no-such-flag"],
        ["status", "--json", "--cache", "{tmp}/none"],
        ["prepare", "--json", "--cache", "{tmp}", "--links", "{tmp}/l", "--version", V, "--wait", "-1"],
        ["gc", "--json", "--cache", "{tmp}", "--keep", "many"],
    ],
)
def test_usage_errors_in_json_mode_are_one_json_error_event(tmp_path: Path, argv: list[str]) -> None:
    result = run(*(a.format(tmp=tmp_path) for a in argv))
    assert result.code == 2 and result.err == ""
    [line] = result.out.splitlines()
    event = json.loads(line)
    assert event["event"] == "error" and event["exitCode"] == 2 and event["message"]
    assert set(event) == {"event", "time", "message", "exitCode"}


def test_install_failures_in_json_mode_are_the_same_event(tmp_path: Path) -> None:
    result = run("install", "--json", "--cache", str(tmp_path / "c"), "--source", f"file://{tmp_path}/none",
                 "--version", V)  # fmt: skip
    assert result.code == 1 and result.err == ""
    event = json.loads(result.out.splitlines()[-1])
    assert event["event"] == "error" and event["exitCode"] == 1 and "not found" in event["message"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [([], "required: COMMAND"), (["frobnicate"], "invalid choice: 'frobnicate'"), (["install"], "--cache")],
)
def test_usage_errors_are_one_prefixed_line(argv: list[str], says: str) -> None:
    assert_one_clean_line(run(*argv), 2, says)


@pytest.mark.parametrize("library", ["/nonexistent/libarchive.so.13", "libz.so.1"])
def test_a_missing_libarchive_says_how_to_install_it(tmp_path: Path, library: str) -> None:
    key = VersionKey("objects", "toys", "v1")
    publish_archives(make_tree(tmp_path / "tree", {"a.txt": 10}), tmp_path / "remote", key, 4096)
    for argv in (
        ["install", "--cache", str(tmp_path / "c"), "--source", f"file://{tmp_path}/remote", "--version", V],
        ["demo", "--dir", str(tmp_path / "demo")],
    ):
        result = run_process(*argv, env={"LIBARCHIVE": library})
        assert result.code == 1, result
        assert "Traceback" not in result.err
        [line] = [x for x in result.err.splitlines() if x.startswith("dscache: error:")]
        for needle in ("libarchive", "apt-get install libarchive13", "brew install libarchive", "LIBARCHIVE"):
            assert needle in line, line


@pytest.mark.parametrize("library", ["/nonexistent/libarchive.so.13", "libz.so.1"])
@pytest.mark.parametrize("team", [[], ["--workers", "2", "--worker-index", "0"]])
def test_a_missing_libarchive_fails_an_install_before_any_archive_is_fetched(
    tmp_path: Path, http_server: FileServer, library: str, team: list[str]
) -> None:
    # As when the installer loaded libarchive at its start: the one line, no archive requested, and a
    # first install's cache directory not left behind (a team's worker keeps the directory it joined).
    key = VersionKey("objects", "toys", "v1")
    tree = make_tree(tmp_path / "tree", {f"d{i}/a.txt": 3000 + i for i in range(8)})
    publish_archives(tree, http_server.root, key, 4096)
    cache = tmp_path / "new" / "cache"
    result = run_process("install", "--cache", str(cache), "--source", http_server.url, "--version", str(key),
                         *team, env={"LIBARCHIVE": library})  # fmt: skip
    assert_one_clean_line(result, 1, "libarchive", "apt-get install libarchive13", "LIBARCHIVE")
    assert http_server.log.find("*.tar.zst") == []
    assert team or not (tmp_path / "new").exists()
    assert not (cache / key.rel).exists()


def _manifest(name: str, remote: Path) -> str:
    return (
        f"apiVersion: dscache.io/v1alpha1\nkind: DatasetCache\nmetadata: {{name: {name}, namespace: ml}}\n"
        f"spec:\n  source: {{file: {{path: {remote}}}}}\n"
        "  versions: [{dataType: objects, source: toys, version: v1}]\n"
    )


def test_install_from_a_file_of_several_datasetcaches_needs_name(tmp_path: Path) -> None:
    key = VersionKey("objects", "toys", "v1")
    publish_archives(make_tree(tmp_path / "tree", {"a.txt": 10}), tmp_path / "remote", key, 4096)
    manifests = tmp_path / "all.yaml"
    manifests.write_text(
        _manifest("first", tmp_path / "remote") + "---\n" + _manifest("second", tmp_path / "remote")
    )
    cache = str(tmp_path / "cache")
    refused = run("install", "-f", str(manifests), "--cache", cache)
    assert_one_clean_line(
        refused, 2, "2 DatasetCache documents (ml/first, ml/second): choose one with --name"
    )
    assert not (tmp_path / "cache").exists()
    assert run("install", "-f", str(manifests), "--cache", cache, "--name", "second").code == 0
    assert (tmp_path / "cache" / ".dscache" / "refs" / "ml.second.json").is_file()
    assert_one_clean_line(run("install", "--cache", cache, *SRC, "--name", "x"), 2, "--name", "needs -f")
    stdin = subprocess.run(
        [sys.executable, "-m", "dscache", "install", "-f", "-", "--name", "ml/first", "--cache", cache],
        input=manifests.read_text(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert stdin.returncode == 0, stdin.stderr
    assert (tmp_path / "cache" / ".dscache" / "refs" / "ml.first.json").is_file()
