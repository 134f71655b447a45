"""A version already present is kept (a published version is immutable and named by its key), but an
install naming another remote or layout for it says so, and the ref records only remotes its
versions came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import CachePaths
from tests.factories import make_tree


def _remote(root: Path, *versions: str) -> Path:
    for rel in versions:
        make_tree(root / rel, {"a.txt": f"{rel}\n", "sub/b.txt": "b\n"})
    return root


def _install(cache: Path, source: str, version: str, *extra: str) -> int:
    return main(["install", "-q", "--cache", str(cache), "--source", source, "--version", version, *extra])


def _ref_remote(cache: Path) -> str:
    return str(json.loads(CachePaths(cache).ref_path("default").read_text())["remote"])


def test_a_present_version_named_from_another_remote_is_kept_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = _remote(tmp_path / "remote", "objects/odd/v1")
    cache = tmp_path / "c1"
    assert _install(cache, f"file://{remote}", "objects/odd=v1", "--layout", "Files") == 0
    version = CachePaths(cache).version_dir(VersionKey("objects", "odd", "v1"))
    before = sorted(p.relative_to(version).as_posix() for p in version.rglob("*"))
    capsys.readouterr()
    assert _install(cache, "file:///nonexistent", "objects/odd=v1") == 0  # presence: no network at all
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"dscache: warning: objects/odd=v1 is already present, installed from file://{remote} (layout "
        "files), not from file:///nonexistent (layout archives) as this install names it: kept as it is "
        "(a published version never changes); to install it from file:///nonexistent, remove it first "
        f"(dscache release --cache {cache} --ref default removes it and the versions only that ref names)"
    ]
    assert _ref_remote(cache) == f"file://{remote}"  # not the remote it did not come from
    assert sorted(p.relative_to(version).as_posix() for p in version.rglob("*")) == before
    (tmp_path / "link").symlink_to(remote)  # the same remote by another path: nothing to say
    assert _install(cache, f"file://{tmp_path / 'link'}", "objects/odd=v1", "--layout", "Files") == 0
    assert capsys.readouterr().err == ""


def test_a_ref_merging_versions_of_two_remotes_names_both(tmp_path: Path) -> None:
    first = _remote(tmp_path / "first", "objects/a/v1")
    second = _remote(tmp_path / "second", "objects/b/v1")
    cache = tmp_path / "cache"
    assert _install(cache, f"file://{first}", "objects/a=v1", "--layout", "Files") == 0
    assert _install(cache, f"file://{second}", "objects/b=v1", "--layout", "Files") == 0
    assert _ref_remote(cache) == f"file://{first}, file://{second}"


@pytest.mark.parametrize("also_missing", [True, False], ids=["one-missing", "all-present"])
def test_a_team_worker_says_it_once_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], also_missing: bool
) -> None:
    """A worker of `install --workers 2` (its partner never starts: it covers the partner's share)
    warns about the present version as a single install does, once."""
    remote = _remote(tmp_path / "remote", "objects/odd/v1", "objects/new/v1")
    cache = tmp_path / "c1"
    assert _install(cache, f"file://{remote}", "objects/odd=v1", "--layout", "Files") == 0
    capsys.readouterr()
    copy = _remote(tmp_path / "copy", "objects/odd/v1", "objects/new/v1")
    versions = ["objects/odd=v1", "--version", "objects/new=v1"] if also_missing else ["objects/odd=v1"]
    team = ["--layout", "Files", "--workers", "2", "--worker-index", "0"]
    assert _install(cache, f"file://{copy}", *versions, *team) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"dscache: warning: objects/odd=v1 is already present, installed from file://{remote} (layout "
        f"files), not from file://{copy} (layout files) as this install names it: kept as it is "
        f"(a published version never changes); to install it from file://{copy}, remove it first "
        f"(dscache release --cache {cache} --ref default removes it and the versions only that ref names)"
    ]
    if also_missing:
        assert (CachePaths(cache).version_dir(VersionKey("objects", "new", "v1")) / "a.txt").is_file()
