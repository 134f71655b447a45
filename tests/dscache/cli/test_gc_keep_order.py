"""`dscache gc --keep N` on a real cache whose versions were installed out of order, and the one
wording of the rule in `--help`, the CRD and README. Each test failed before its fix."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dscache.api.names import VersionKey
from dscache.store.paths import CachePaths
from dscache_operator.crd import render
from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree, publish_archives

README = Path(__file__).resolve().parents[3] / "README.md"
RULE = (
    "those with the highest version names, digit runs compared as numbers "
    "(v9 < v10, 20250101 < 20250601), whatever order they were installed in"
)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_gc_keep_1_keeps_the_highest_version_installed_before_lower_ones(tmp_path: Path) -> None:
    remote, cache = tmp_path / "remote", tmp_path / "cache"
    order = ["v10", "v3", "v9", "v1", "v11"]  # v11 last: the ref points at it
    for i, ver in enumerate(order):
        tree = make_tree(tmp_path / f"t{i}", {"a/x.txt": 100 + i})
        publish_archives(tree, remote, VersionKey("objects", "thor", ver), archive_size=4096)
    for ver in order:
        result = run(
            "install", "--cache", str(cache), "--source", remote.as_uri(), "--version", f"objects/thor={ver}"
        )
        assert result.code == 0, result
    dry = run("gc", "--cache", str(cache), "--keep", "1", "--dry-run", "--json")
    assert json.loads(dry.out)["removed"] == ["objects/thor=v1", "objects/thor=v3", "objects/thor=v9"]
    result = run("gc", "--cache", str(cache), "--keep", "1", "--json")
    assert result.code == 0, result
    report = json.loads(result.out)
    assert report["kept"] == ["objects/thor=v10", "objects/thor=v11"]
    paths = CachePaths(cache)
    present = [v for v in order if paths.version_dir(VersionKey("objects", "thor", v)).is_dir()]
    assert present == ["v10", "v11"]


def test_help_crd_and_readme_state_the_same_keep_rule() -> None:
    help_text = run("gc", "--help").out
    assert RULE in _one_line(help_text)
    schema = yaml.safe_load(render())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    keep = schema["properties"]["spec"]["properties"]["retention"]["properties"]["keep"]
    assert keep["description"] == f"Unreferenced versions kept per source: {RULE}."
    readme = _one_line(README.read_text())
    assert (
        "`gc --keep N` (and the operator's `spec.retention.keep`) keeps, of the unreferenced versions "
        f"per source, {RULE}" in readme
    )
    for crd in ("crds/datasetcache.yaml", "charts/dscache/files/crds/datasetcache.yaml"):
        assert (README.parent / crd).read_text() == render(), crd
