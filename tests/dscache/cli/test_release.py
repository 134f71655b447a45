"""`dscache release`: the cleanup Job's command, on a real installed cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from tests.factories import make_tree, publish_archives

SHARED = VersionKey("objects", "thor", "v1")
OWN = VersionKey("tables", "kitchen", "v1")
PINNED = VersionKey("tables", "garage", "v1")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    remote = tmp_path / "remote"
    for i, key in enumerate((SHARED, OWN, PINNED)):
        publish_archives(make_tree(tmp_path / f"t{i}", {"f.bin": 3000}), remote, key, archive_size=4096)
    cache = tmp_path / "cache"
    src = f"file://{remote}"
    for ref, keys in (("ns.doomed", (SHARED, OWN, PINNED)), ("ns.keeper", (SHARED,))):
        args = ["install", "--cache", str(cache), "--source", src, "--ref", ref]
        assert main([*args, *(a for k in keys for a in ("--version", str(k)))]) == 0
    return cache


def test_release_removes_only_versions_no_other_ref_or_pod_uses(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    args = ["release", "--cache", str(cache), "--ref", "ns.doomed", "--protect", str(PINNED), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["removed"] == [str(OWN)] and sorted(out["kept"]) == sorted([str(SHARED), str(PINNED)])
    assert not (cache / OWN.rel).exists()
    assert (cache / SHARED.rel / "f.bin").is_file() and (cache / PINNED.rel / "f.bin").is_file()
    assert not (cache / ".dscache/refs/ns.doomed.json").exists()
    assert (cache / ".dscache/refs/ns.keeper.json").exists()


def test_release_is_idempotent(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["release", "--cache", str(cache), "--ref", "ns.doomed"]) == 0
    capsys.readouterr()
    assert main(["release", "--cache", str(cache), "--ref", "ns.doomed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "ref": "ns.doomed",
        "found": False,
        "removed": [],
        "kept": [],
        "left": [],
    }


def test_release_rejects_unsafe_ref(cache: Path) -> None:
    assert main(["release", "--cache", str(cache), "--ref", "../x"]) == 2
