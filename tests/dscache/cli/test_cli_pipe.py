"""A reader that goes away (`dscache install --json | head -c 100`): dscache stops writing, never
blames the cache, and never leaves it half-done. Decision: the install carries on to the end (a
version is published whole, nothing is left to resume), then the command exits 141, the code a shell
reports for a tool stopped by SIGPIPE, with one warning line on stderr saying so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree, publish_archives
from tests.servers.files import FileServer

KEY = VersionKey("objects", "toys", "v1")
DSCACHE = [sys.executable, "-m", "dscache"]


def _published_and_intact(cache: Path) -> None:
    assert CachePaths(cache).complete_record(KEY).is_file()
    assert run("verify", "--cache", str(cache)).code == 0
    staging = CachePaths(cache).staging_root
    assert not staging.exists() or not any(p.is_file() for p in staging.rglob("*"))


def test_install_json_into_head_finishes_the_install_and_exits_141(
    http_server: FileServer, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "tree", {f"obj_{i}/mesh.bin": 20_000 + i for i in range(6)})
    publish_archives(tree, http_server.root, KEY, archive_size=40_000)
    http_server.faults.delay(0.6, times=None, path="*.tar.zst")  # events keep coming after head left
    cache = tmp_path / "cache"
    argv = ["install", "--json", "--jobs", "1", "--cache", str(cache), "--source", http_server.url,
            "--version", str(KEY)]  # fmt: skip
    installer = subprocess.Popen([*DSCACHE, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert installer.stdout is not None and installer.stderr is not None
    head = subprocess.run(["head", "-c", "100"], stdin=installer.stdout, capture_output=True, check=True)
    installer.stdout.close()
    err = installer.stderr.read().decode()
    assert installer.wait(timeout=120) == 141, err
    assert head.stdout.startswith(b'{"event": "start"') and len(head.stdout) == 100
    assert "Traceback" not in err and str(cache) not in err
    assert err.splitlines() == [
        "dscache: warning: the output was closed early (broken pipe): "
        "the install carried on to the end without printing and succeeded"
    ]
    _published_and_intact(cache)


def test_a_reader_gone_before_the_first_event_changes_nothing_but_the_exit_code(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", {"a/x.txt": 3000, "b/y.bin": 9000})
    publish_archives(tree, tmp_path / "remote", KEY, archive_size=4096)
    cache = tmp_path / "cache"
    argv = ["install", "--json", "--cache", str(cache), "--source", f"file://{tmp_path}/remote",
            "--version", str(KEY)]  # fmt: skip
    proc = subprocess.Popen([*DSCACHE, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| true`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "broken pipe" in err
    _published_and_intact(cache)


def test_other_commands_stop_quietly_on_a_closed_stdout(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", {"a/x.txt": 3000})
    publish_archives(tree, tmp_path / "remote", KEY, archive_size=4096)
    cache = tmp_path / "cache"
    assert run("install", "--cache", str(cache), "--source", f"file://{tmp_path}/remote",
               "--version", str(KEY)).code == 0  # fmt: skip
    links = tmp_path / "links"
    for argv in (
        ["status", "--cache", str(cache), "--json"],
        ["verify", "--cache", str(cache), "--json"],
        ["prepare", "--cache", str(cache), "--links", str(links), "--version", str(KEY), "--json"],
        ["completion", "bash"],
    ):
        proc = subprocess.Popen([*DSCACHE, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 141, (argv, err)
        assert err == "", (argv, err)
    assert (links / KEY.data_type / KEY.source).is_symlink()  # prepare did its work before printing
    assert json.loads(run("status", "--cache", str(cache), "--json").out)["versions"][0]["version"] == "v1"
