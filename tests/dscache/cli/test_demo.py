"""`dscache demo` works with no network at all (in an empty network namespace) and leaves a valid cache."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from dscache.api.names import parse_version_arg
from dscache.store.catalog import catalog
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import run


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


def _readme_demo_numbers() -> dict[str, tuple[int, int, int]]:
    """What README's "Two commands" says of each demo version: (generated files, files in the cache,
    archives)."""
    text = " ".join((Path(__file__).parents[3] / "README.md").read_text().split())
    found = re.search(
        r"The demo generates (\d+) files for `(\S+)` and (\d+) for `(\S+)`; the cache counts (\d+) and "
        r"(\d+) files in them .*? one molmospaces flag per archive \((\d+) and (\d+) archives",
        text,
    )
    assert found, "README's demo paragraph changed: keep its numbers checked here"
    made1, v1, made2, v2, files1, files2, arch1, arch2 = found.groups()
    return {v1: (int(made1), int(files1), int(arch1)), v2: (int(made2), int(files2), int(arch2))}


def test_readme_states_the_file_counts_the_demo_prints(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    result = run("demo", "--dir", str(work))
    assert result.code == 0, result
    stated = _readme_demo_numbers()
    assert set(stated) == {"objects/toys=v1", "scenes/kitchen=2025.1"}
    status = json.loads(run("status", "--cache", str(work / "cache"), "--json").out)
    in_status = {f"{r['dataType']}/{r['source']}={r['version']}": r["files"] for r in status["versions"]}
    for version, (made, files, archives) in stated.items():
        key = parse_version_arg(version)
        assert sum(1 for p in (work / "source" / key.rel).rglob("*") if p.is_file()) == made
        assert len(list((work / "remote" / key.rel).glob("*.tar.zst"))) == archives
        assert f"published {version}: {files} files" in result.err
        assert f"{key.rel}/  ({files} files, read-only)" in result.out  # the tree says the same
        assert in_status[version] == files
