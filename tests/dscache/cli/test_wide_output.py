"""Reports piped to a file or a program are never cut to 80 columns (rich's default off a terminal)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dscache.api.names import VersionKey
from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree, publish_archives

KEY = VersionKey("objects", "a_source_with_a_rather_long_name_for_its_column", "2025.01.01-release-candidate")
REF = "research.a-datasetcache-named-at-length-by-a-team-that-likes-long-names"


def test_status_to_a_pipe_shows_every_value_whole(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    publish_archives(make_tree(tmp_path / "t", {"a.txt": 100}), remote, KEY, 4096)
    cache = tmp_path / ("a-cache-directory-whose-path-alone-is-longer-than-a-terminal-of-eighty-columns" * 2)
    argv = ["--cache", str(cache), "--source", f"file://{remote}", "--version", str(KEY), "--ref", REF]
    assert run("install", *argv).code == 0
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run(
        [sys.executable, "-m", "dscache", "status", "--cache", str(cache)],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(f"dscache: {cache}" in line for line in lines), proc.stdout  # the title, on one line
    [row] = [line for line in lines if KEY.source in line]
    assert KEY.version in row and REF in row and "…" not in row, proc.stdout


def test_demo_to_a_pipe_wraps_no_line(tmp_path: Path) -> None:
    work = tmp_path / ("demo-in-a-directory-with-a-long-name" * 3)
    result = run("demo", "--dir", str(work))
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert f"dscache demo in {work}: publishing 2 versions to a local remote, then installing" in lines
    assert f"{work}/cache" in [line.strip() for line in lines]  # the tree's root, whole
