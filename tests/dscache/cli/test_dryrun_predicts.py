"""`install --dry-run` predicts what the install says and does of a version it finds present, and
`install --repair --dry-run` previews a repair. Each test failed before its fix."""

from __future__ import annotations

import json
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree, publish_archives

KEY = VersionKey("objects", "toys", "v1")
WARNING = "dscache: warning: "


def _snapshot(root: Path) -> dict[str, tuple[int, int, float]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mode, p.stat().st_mtime)
        for p in sorted(root.rglob("*"))
    }


def _damaged(tmp_path: Path) -> tuple[list[str], Path]:
    """A cache holding KEY (six 5000-byte files, one per archive) with `a/3.bin` deleted; its argv."""
    remote, cache = tmp_path / "remote", tmp_path / "cache"
    publish_archives(make_tree(tmp_path / "t", {f"a/{i}.bin": 5000 for i in range(6)}), remote, KEY, 8192)
    argv = ["--cache", str(cache), "--source", remote.as_uri(), "--version", str(KEY)]
    assert run("install", *argv).code == 0
    (CachePaths(cache).version_dir(KEY) / "a" / "3.bin").unlink()
    return argv, cache


def test_dry_run_gives_the_damage_warning_the_install_gives(tmp_path: Path) -> None:
    argv, cache = _damaged(tmp_path)
    before = _snapshot(cache)
    dry = run("install", "--dry-run", *argv)
    report = json.loads(run("install", "--dry-run", "--json", *argv).out)
    assert _snapshot(cache) == before
    real = run("install", *argv)
    assert real.code == 0
    [said] = [line.removeprefix(WARNING) for line in real.err.splitlines() if line.startswith(WARNING)]
    assert said.startswith(f"{KEY} is present but differs from what was installed (1 missing, ")
    assert "run this install again with --repair" in said
    assert f"  {KEY}: published, nothing to fetch" in dry.out
    assert f"    the install would warn: {said}" in dry.out.splitlines()
    [version] = report["versions"]
    assert (version["state"], version["bytesToFetch"], version["warnings"]) == ("published", 0, [said])


def test_dry_run_gives_the_other_remote_warning_the_install_gives(tmp_path: Path) -> None:
    argv, _cache = _damaged(tmp_path)
    other = tmp_path / "mirror"
    publish_archives(make_tree(tmp_path / "t2", {"x.bin": 100}), other, KEY, 8192)
    argv[3] = other.as_uri()
    report = json.loads(run("install", "--dry-run", "--json", *argv).out)
    real = run("install", *argv)
    said = [line.removeprefix(WARNING) for line in real.err.splitlines() if line.startswith(WARNING)]
    assert len(said) == 2 and "already present, installed from" in said[0]
    assert report["versions"][0]["warnings"] == said


def test_dry_run_says_the_install_would_fail_on_a_directory_it_did_not_create(tmp_path: Path) -> None:
    remote, cache = tmp_path / "remote", tmp_path / "cache"
    publish_archives(make_tree(tmp_path / "t", {"a.bin": 5000}), remote, KEY, 8192)
    make_tree(cache / KEY.rel, {"mine.txt": "a user's file"})
    argv = ["--cache", str(cache), "--source", remote.as_uri(), "--version", str(KEY)]
    report = json.loads(run("install", "--dry-run", "--json", *argv).out)
    real = run("install", *argv)
    assert real.code != 0
    [error] = [line.removeprefix("dscache: error: ") for line in real.err.splitlines() if "error" in line]
    assert "a directory dscache did not create" in error
    assert report["wouldFail"] == [error]
    assert f"the install would fail: {error}" in run("install", "--dry-run", *argv).out


def test_repair_dry_run_previews_what_the_repair_fetches_and_writes_nothing(tmp_path: Path) -> None:
    argv, cache = _damaged(tmp_path)
    before = _snapshot(cache)
    dry = run("install", "--repair", "--dry-run", "--json", *argv)
    assert dry.code == 0, dry
    assert _snapshot(cache) == before
    report = json.loads(dry.out)
    [version] = report["versions"]
    assert (version["state"], version["items"], version["itemsReused"], version["itemsToFetch"]) == (
        "repair",
        6,
        5,
        1,
    )
    assert 0 < version["bytesToFetch"] < version["bytes"] / 3  # one archive of six
    assert report["bytesToFetch"] == version["bytesToFetch"] and report["wouldFail"] == []
    text = run("install", "--repair", "--dry-run", *argv)
    assert f"  {KEY}: repair: 1 of 6 item(s)" in text.out and "5 intact item(s)" in text.out
    assert _snapshot(cache) == before

    real = run("install", "--repair", "--json", *argv)
    assert real.code == 0, real
    [done] = [e for e in map(json.loads, real.out.splitlines()) if e.get("event") == "done"]
    assert done["downloadedBytes"] == version["bytesToFetch"]
    assert run("verify", "--cache", str(cache)).code == 0


def test_repair_dry_run_of_an_intact_cache_says_nothing_to_repair(tmp_path: Path) -> None:
    argv, _cache = _damaged(tmp_path)
    assert run("install", "--repair", *argv).code == 0
    dry = run("install", "--repair", "--dry-run", *argv)
    assert dry.code == 0
    assert "nothing to repair" in dry.err and f"  {KEY}: published, nothing to fetch" in dry.out


def test_dry_run_says_the_install_would_fail_on_a_ref_naming_clashing_sources(tmp_path: Path) -> None:
    remote, cache = tmp_path / "remote", tmp_path / "cache"
    upper = VersionKey("objects", "TOYS", "v1")
    for i, key in enumerate((KEY, upper)):
        publish_archives(make_tree(tmp_path / f"t{i}", {"a.bin": 500 + i}), remote, key, 8192)
    assert run("install", "--cache", str(cache), "--source", remote.as_uri(), "--version", str(KEY)).code == 0
    argv = ["--cache", str(cache), "--source", remote.as_uri(), "--version", str(upper)]
    report = json.loads(run("install", "--dry-run", "--json", *argv).out)
    real = run("install", *argv)
    assert real.code != 0
    [error] = [line.removeprefix("dscache: error: ") for line in real.err.splitlines() if "error" in line]
    assert error.startswith("ref default would name objects/toys=v1 and objects/TOYS=v1")
    assert report["wouldFail"] == [error]


def test_repair_dry_run_names_the_files_the_repair_would_remove(tmp_path: Path) -> None:
    argv, cache = _damaged(tmp_path)
    (CachePaths(cache).version_dir(KEY) / "mine.txt").write_text("put there by hand")
    before = _snapshot(cache)
    dry = run("install", "--repair", "--dry-run", *argv)
    assert dry.code == 0
    assert (
        f"dscache: warning: --repair would replace {KEY} with a fresh copy of what the remote has: the 1 "
        "file(s) in it that dscache did not install would be removed with the damaged copy (mine.txt)"
    ) in dry.err
    assert _snapshot(cache) == before
