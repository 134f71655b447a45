"""The `dscache` process exits without interpreter teardown: its output and exit codes must survive that."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dscache.api.names import VersionKey
from tests.factories import make_tree, publish_archives


def _dscache(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dscache.cli.app", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_piped_json_events_are_complete_after_the_fast_exit(tmp_path: Path) -> None:
    key = VersionKey("objects", "toys", "v1")
    tree = make_tree(tmp_path / "tree", {f"obj_{i:02}/mesh.bin": 300 + i for i in range(40)})
    publish_archives(tree, tmp_path / "remote", key, archive_size=4096)
    cache = tmp_path / "cache"
    proc = _dscache(
        "install", "--cache", str(cache), "--source", (tmp_path / "remote").as_uri(),
        "--version", str(key), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line)["event"] for line in proc.stdout.splitlines()]
    assert events[0] == "start" and events[-1] == "done" and "version_published" in events
    status = _dscache("status", "--cache", str(cache), "--json")
    assert status.returncode == 0
    assert [v["version"] for v in json.loads(status.stdout)["versions"]] == ["v1"]


def test_exit_codes_survive_the_fast_exit(tmp_path: Path) -> None:
    usage = _dscache("install", "--cache", str(tmp_path), "--source", "file:///nowhere", "--version", "bad")
    assert usage.returncode == 2 and "--version" in usage.stderr
    failure = _dscache(
        "install", "--cache", str(tmp_path / "c"), "--source", (tmp_path / "missing").as_uri(),
        "--version", "objects/toys=v1",
    )  # fmt: skip
    assert failure.returncode == 1
    assert failure.stderr.count("dscache: error: version objects/toys=v1 not found") == 1, failure.stderr
