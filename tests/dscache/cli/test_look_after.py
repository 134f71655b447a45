"""Looking after a cache as a newcomer does: a cache nested in another, staged data of an interrupted
install, a tampered version and its repair."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree, publish_archives

OWN = VersionKey("objects", "thor", "v1")
INNER = VersionKey("objects", "thor", "v9")


def _install(cache: Path, remote: Path, key: VersionKey, *more: str) -> None:
    source = ["--source", f"file://{remote}", "--version", str(key)]
    result = run("install", "--cache", str(cache), *source, *more)
    assert result.code == 0, result


def _two_caches(tmp_path: Path) -> tuple[Path, Path]:
    """An outer cache holding OWN, and a second cache (holding INNER) moved into its directory."""
    remote = tmp_path / "remote"
    for key in (OWN, INNER):
        tree = make_tree(tmp_path / key.version, {"a.txt": 300, "b/c.bin": 5000})
        publish_archives(tree, remote, key, 4096)
    outer, elsewhere = tmp_path / "cache", tmp_path / "second"
    _install(outer, remote, OWN)
    _install(elsewhere, remote, INNER, "--ref", "second")
    inner = outer / "old-cache"
    elsewhere.rename(inner)
    return outer, inner


def test_status_verify_and_gc_leave_a_nested_cache_alone(tmp_path: Path) -> None:
    outer, inner = _two_caches(tmp_path)
    status = run("status", "--cache", str(outer), "--json")
    assert status.code == 0, status
    report = json.loads(status.out)
    assert [r["version"] for r in report["versions"]] == ["v1"]
    assert report["ignored"] == [{"path": str(inner), "version": None, "nestedCache": True}]
    assert f"dscache: ignored {inner}: a cache nested in this one" in status.err

    text = run("status", "--cache", str(outer))
    assert "v9" not in text.out and f"see dscache status --cache {inner}" in text.err

    verify = run("verify", "--cache", str(outer))
    assert verify.code == 0, verify
    assert verify.out.splitlines() == [f"ok       {OWN}", "1 of 1 version(s) intact"]
    assert f"dscache: ignored {inner}" in verify.err

    gc = run("gc", "--cache", str(outer), "--keep", "0", "--json")
    assert gc.code == 0, gc
    assert (json.loads(gc.out)["removed"], json.loads(gc.out)["kept"]) == ([], [str(OWN)])
    release = run("release", "--cache", str(outer), "--ref", "default")
    assert release.code == 0, release
    assert not CachePaths(outer).version_dir(OWN).exists()
    assert CachePaths(inner).complete_record(INNER).is_file()  # the nested cache's version is untouched
    assert run("verify", "--cache", str(inner)).code == 0


def test_a_version_copied_elsewhere_in_the_cache_is_not_listed_as_one_of_its_versions(tmp_path: Path) -> None:
    outer, inner = _two_caches(tmp_path)
    stray = outer / "backup" / "thor-v9"
    shutil.copytree(CachePaths(inner).version_dir(INNER), stray, symlinks=True)
    status = run("status", "--cache", str(outer), "--json")
    report = json.loads(status.out)
    assert [r["version"] for r in report["versions"]] == ["v1"]
    assert {"path": str(stray), "version": str(INNER), "nestedCache": False} in report["ignored"]
    assert f"dscache: ignored {stray}: a record of version {INNER} where that version does not belong" in (
        status.err
    )
