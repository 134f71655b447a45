"""`dscache demo` works with no network at all (in an empty network namespace) and leaves a valid cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dscache.store.catalog import catalog
from dscache.store.paths import CachePaths


def test_demo_runs_offline_and_builds_a_verified_cache(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "dscache.cli.app", "demo", "--dir", str(work)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Try next" in proc.stdout and "dscache prepare" in proc.stdout
    infos = catalog(CachePaths(work / "cache"))
    assert [str(i.key) for i in infos] == ["objects/toys=v1", "scenes/kitchen=2025.1"]
    assert all(i.refs == ["demo"] for i in infos)
    verify = subprocess.run(
        [sys.executable, "-m", "dscache.cli.app", "verify", "--cache", str(work / "cache")], check=False
    )
    assert verify.returncode == 0
