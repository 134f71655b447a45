"""Every path an install must write is checked before the first byte is fetched: a path dscache keeps
in the control dir that is the wrong kind, or a directory the user cannot write, stops the install
with one line naming it, and nothing is staged or published (it used to fail after publishing)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from tests.dscache.cli.cli_helpers import (
    NOBODY,
    Result,
    as_nobody,
    assert_one_clean_line,
    run,
    world_traversable_dir,
)
from tests.factories import make_tree, publish_archives

KEY = VersionKey("objects", "thor", "v1")
VERSION = "objects/thor=v1"
MANIFEST = """\
apiVersion: dscache.io/v1alpha1
kind: DatasetCache
metadata: {{name: m, namespace: default}}
spec:
  source: {{file: {{path: {remote}}}}}
  versions:
  - {{dataType: objects, source: thor, version: v1}}
"""


def _remote(base: Path) -> Path:
    remote = base / "remote"
    publish_archives(
        make_tree(base / "tree", {"a/f1": 3000, "a/f2": 5000}), remote, KEY, archive_size=1 << 20
    )
    return remote


def _install(base: Path, cache: Path, *, manifest: bool, nobody: bool = False) -> Result:
    remote = _remote(base)
    if manifest:
        path = base / "m.yaml"
        path.write_text(MANIFEST.format(remote=remote))
        argv = ["install", "-f", str(path), "--cache", str(cache)]
    else:
        argv = ["install", "--cache", str(cache), "--source", f"file://{remote}", "--version", VERSION]
    return as_nobody(*argv) if nobody else run(*argv)


def _nothing_installed(cache: Path, planted: Path | None = None) -> None:
    """No version dir, and nothing in staging but the file the test put there."""
    assert not (cache / "objects").exists()
    staging = cache / ".dscache" / "staging"
    assert not staging.is_dir() or [p for p in staging.rglob("*") if p.is_file() and p != planted] == []


THEN = "move it away, then install again (nothing was installed)"


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "flags"])
@pytest.mark.parametrize(
    ("make", "where", "says"),
    [
        ("refs", "refs", "a regular file, but dscache keeps its refs in a directory there"),
        (
            "staging",
            "staging",
            ("a regular file, but dscache keeps the staging of installs in a directory there"),
        ),
        (
            "trash",
            "trash",
            ("a regular file, but dscache keeps what it removes (its trash) in a directory there"),
        ),
        (
            "staging/objects/thor",
            "staging/objects/thor",
            "a regular file on the way to {control}/staging/objects/thor/v1, but dscache keeps the "
            "staging of objects/thor=v1 in a directory there",
        ),
    ],
)
def test_a_file_where_dscache_keeps_a_directory_stops_the_install_before_any_transfer(
    tmp_path: Path, manifest: bool, make: str, where: str, says: str
) -> None:
    cache = tmp_path / "cache"
    control = cache / ".dscache"
    (control / make).parent.mkdir(parents=True, exist_ok=True)
    (control / make).write_text("mine\n")
    result = _install(tmp_path, cache, manifest=manifest)
    assert_one_clean_line(result, 1, f"{control / where}: {says.format(control=control)}; {THEN}")
    _nothing_installed(cache, control / make)
    assert (control / make).read_text() == "mine\n"


@pytest.mark.parametrize("kind", ["directory", "dangling symlink"])
def test_a_writer_lock_or_refs_of_the_wrong_kind_are_named(tmp_path: Path, kind: str) -> None:
    cache = tmp_path / "cache"
    control = cache / ".dscache"
    control.mkdir(parents=True)
    if kind == "directory":
        (control / "writer.lock").mkdir()
        expected = f"{control}/writer.lock: a directory, but dscache keeps its writer lock in a file there"
    else:
        (control / "refs").symlink_to(tmp_path / "gone")
    result = _install(tmp_path, cache, manifest=True)
    if kind == "directory":
        assert_one_clean_line(result, 1, f"{expected}; {THEN}")
    else:  # refused as a symlink at one of dscache's own directories, like every command does
        refs = control / "refs"
        assert_one_clean_line(
            result,
            2,
            f"--cache {refs}: a dangling symlink (to {tmp_path / 'gone'}) is where dscache keeps "
            f"dscache's refs in its control directory; dscache does not follow it: remove it "
            f"(rm {refs}), then run this again",
        )
    _nothing_installed(cache)


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory uid 65534 can reach and write in."""
    with world_traversable_dir() as base:
        os.chown(base, NOBODY, NOBODY)
        yield base


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to uid 65534 needs root")
@pytest.mark.parametrize(
    ("locked", "purpose"), [("refs", "its refs"), ("staging", "the staging of installs")]
)
def test_a_control_dir_the_user_cannot_write_stops_the_install_before_any_transfer(
    shared: Path, locked: str, purpose: str
) -> None:
    cache = shared / "cache"
    control = cache / ".dscache"
    (control / locked).mkdir(parents=True)
    for path in (cache, control):
        os.chown(path, NOBODY, NOBODY)
    (control / locked).chmod(0o755)  # root's: uid 65534 may read, not write
    result = _install(shared, cache, manifest=True, nobody=True)
    assert_one_clean_line(
        result,
        1,
        f"{control / locked}: not writable by user id {NOBODY}, and dscache writes {purpose} there; "
        "fix that, then install again (nothing was installed)",
    )
    _nothing_installed(cache)


def test_a_worker_of_a_team_install_checks_too(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    control = cache / ".dscache"
    control.mkdir(parents=True)
    (control / "refs").write_text("mine\n")
    remote = _remote(tmp_path)
    argv = ["--cache", str(cache), "--source", f"file://{remote}", "--version", VERSION]
    result = run("install", *argv, "--workers", "2", "--worker-index", "0", "--team", "t1")
    assert_one_clean_line(
        result, 1, f"{control}/refs: a regular file, but dscache keeps its refs in a directory there"
    )
    _nothing_installed(cache)


@pytest.mark.parametrize("level", ["staging/objects", "staging/objects/thor"])
def test_a_symlink_in_staging_of_a_version_no_ref_names_yet_is_refused_not_written_through(
    tmp_path: Path, level: str
) -> None:
    """The install stages a new version: the levels of its staging dir are dscache's own, so a symlink
    there is refused by the one check of own paths (it used to be followed: staged outside the cache)."""
    cache = tmp_path / "cache"
    control = cache / ".dscache"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (control / level).parent.mkdir(parents=True)
    (control / level).symlink_to(elsewhere)
    result = _install(tmp_path, cache, manifest=False)
    link = control / level
    role = "the data type" if level.endswith("objects") else "a source"
    fix = f"rm {link} && mv {elsewhere} {link}"
    assert_one_clean_line(
        result,
        1,
        f"{link}: a symlink (to {elsewhere}) is where dscache keeps {role} directory of version "
        f"objects/thor=v1 in staging; dscache does not follow it (nor delete through it): put the "
        f"directory itself there ({fix}), then run this again",
    )
    _nothing_installed(cache)
    assert list(elsewhere.iterdir()) == []
