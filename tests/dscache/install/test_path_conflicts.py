"""Archives that disagree on what a path is: refused before publishing, naming the path and both archives.

Same-kind overlaps follow "later archive wins" (name order), and whatever is published passes
`verify` and every way `prepare` exposes it.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.install.pathkinds import DIRECTORY, FILE, SYMLINK, Conflict, PathKinds, Placed
from dscache.store.paths import CachePaths
from dscache.store.records import read_ref
from tests.dscache.install.roundtrip import VIEWS, child_env, journey, view
from tests.factories import _info, publish_raw_archives, tar_zst

KEY = VersionKey("scenes", "kitchen", "v1")
Member = tuple[tarfile.TarInfo, bytes | None]


def file(name: str, data: bytes = b"data\n") -> Member:
    return (_info(name, tarfile.REGTYPE, size=len(data)), data)


def directory(name: str) -> Member:
    return (_info(name, tarfile.DIRTYPE), None)


def symlink(name: str, target: str) -> Member:
    return (_info(name, tarfile.SYMTYPE, link=target), None)


def hardlink(name: str, target: str) -> Member:
    return (_info(name, tarfile.LNKTYPE, link=target), None)


REBUILD = (
    "the archive as published holds a member dscache never extracts, and nothing of the version was "
    "installed: rebuild the archive (dscache publish packs only files, directories and symlinks inside "
    "the tree) and publish the version again"
)
# archives of one version -> the one line the install must fail with (after the version, before REBUILD)
REFUSED: dict[str, tuple[dict[str, list[Member]], str]] = {
    "file then dir": (
        {"a.tar.zst": [file("p")], "b.tar.zst": [file("p/q")]},
        "member 'p/q' of archive b.tar.zst: 'p' is a file in a.tar.zst and a directory (of 'p/q') in "
        "b.tar.zst",
    ),
    "dir then file": (
        {"a.tar.zst": [file("p/q")], "b.tar.zst": [file("p")]},
        "member 'p' of archive b.tar.zst: 'p' is a directory (of 'p/q') in a.tar.zst and a file in b.tar.zst",
    ),
    "explicit dir then file": (
        {"a.tar.zst": [directory("p/")], "b.tar.zst": [file("p")]},
        "member 'p' of archive b.tar.zst: 'p' is a directory in a.tar.zst and a file in b.tar.zst",
    ),
    "path below a file of another archive": (
        {"a.tar.zst": [file("p")], "b.tar.zst": [file("p/q/r")]},
        "member 'p/q/r' of archive b.tar.zst: 'p' is a file in a.tar.zst and a directory (of 'p/q/r') in "
        "b.tar.zst",
    ),
    "symlink then dir": (
        {"a.tar.zst": [directory("x/"), symlink("p", "x")], "b.tar.zst": [directory("p/")]},
        "member 'p' of archive b.tar.zst: 'p' is a symlink in a.tar.zst and a directory in b.tar.zst",
    ),
    "symlink then a path below it": (
        {"a.tar.zst": [directory("x/"), symlink("p", "x")], "b.tar.zst": [file("p/q")]},
        "member 'p/q' of archive b.tar.zst: 'p' is a symlink in a.tar.zst and a directory (of 'p/q') in "
        "b.tar.zst",
    ),
    "dir then symlink": (
        {"a.tar.zst": [file("p/q")], "b.tar.zst": [file("x"), symlink("p", "x")]},
        "member 'p' of archive b.tar.zst: 'p' is a directory (of 'p/q') in a.tar.zst and a symlink in "
        "b.tar.zst",
    ),
    "file then symlink": (
        {"a.tar.zst": [file("p")], "b.tar.zst": [file("x"), symlink("p", "x")]},
        "member 'p' of archive b.tar.zst: 'p' is a file in a.tar.zst and a symlink in b.tar.zst",
    ),
    "symlink then file": (
        {"a.tar.zst": [file("x"), symlink("p", "x")], "b.tar.zst": [file("p")]},
        "member 'p' of archive b.tar.zst: 'p' is a symlink in a.tar.zst and a file in b.tar.zst",
    ),
    "hardlink then dir": (
        {"a.tar.zst": [file("x"), hardlink("p", "x")], "b.tar.zst": [file("p/q")]},
        "member 'p/q' of archive b.tar.zst: 'p' is a file in a.tar.zst and a directory (of 'p/q') in "
        "b.tar.zst",
    ),
    "one archive: file then dir": (
        {"a.tar.zst": [file("p"), file("p/q")]},
        "member 'p/q' of archive a.tar.zst: 'p' is a file and, later in the same archive, a directory (of "
        "'p/q')",
    ),
    "one archive: dir then file": (
        {"a.tar.zst": [file("p/q"), file("p")]},
        "member 'p' of archive a.tar.zst: 'p' is a directory (of 'p/q') and, later in the same archive, a "
        "file",
    ),
    "one archive: empty dir then symlink": (
        {"a.tar.zst": [file("x"), directory("p/"), symlink("p", "x")]},
        "member 'p' of archive a.tar.zst: 'p' is a directory and, later in the same archive, a symlink",
    ),
    "one archive: file then symlink": (
        {"a.tar.zst": [file("x"), file("p"), symlink("p", "x")]},
        "member 'p' of archive a.tar.zst: 'p' is a file and, later in the same archive, a symlink",
    ),
    "one archive: hardlink where a dir is": (
        {"a.tar.zst": [file("x"), file("p/q"), hardlink("p", "x")]},
        "member 'p' of archive a.tar.zst: 'p' is a directory (of 'p/q') and, later in the same archive, a "
        "file",
    ),
    "one archive: hardlink to a directory": (
        {"a.tar.zst": [file("d/x"), hardlink("h", "d")]},
        "member 'h' of archive a.tar.zst: hardlink to a directory ('d')",
    ),
    "one archive: hardlink to a later member": (
        {"a.tar.zst": [hardlink("h", "x"), file("x")]},
        "member 'h' of archive a.tar.zst: hardlink target 'x' is not an earlier member of this archive",
    ),
    "one archive: hardlink to itself": (
        {"a.tar.zst": [file("h"), hardlink("h", "h")]},
        "member 'h' of archive a.tar.zst: hardlink to itself",
    ),
    "a member where dscache writes its flag": (
        {"a.tar.zst": [file(".a.tar.zst_complete_extract")]},
        "member '.a.tar.zst_complete_extract' of archive a.tar.zst: '.a.tar.zst_complete_extract' is a file "
        "dscache "
        "writes into the version (molmospaces flag or manifest)",
    ),
    "a directory where dscache writes a manifest": (
        {"a.tar.zst": [file("mjthor_resource_file_to_size_mb.json/x")]},
        "member 'mjthor_resource_file_to_size_mb.json/x' of archive a.tar.zst: "
        "'mjthor_resource_file_to_size_mb.json' is a file dscache writes into the version "
        "(molmospaces flag or manifest)",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_kind_conflicts_are_refused_before_publishing(tmp_path: Path, case: str) -> None:
    archives, message = REFUSED[case]
    remote = tmp_path / "remote"
    publish_raw_archives(remote, KEY, {name: tar_zst(members) for name, members in archives.items()})
    trip = journey(tmp_path, remote, KEY, env=child_env())
    assert trip.install.code == 1
    assert trip.install.stderr.splitlines()[-1] == f"dscache: error: {KEY}: {message}; {REBUILD}"
    assert "Traceback" not in trip.install.stderr
    cache = CachePaths(tmp_path / "cache")
    assert not cache.version_dir(KEY).exists()
    assert read_ref(cache, "default") is None


# archives of one version -> what every view of the published version shows
ACCEPTED: dict[str, tuple[dict[str, list[Member]], dict[bytes, bytes | None]]] = {
    "same file in two archives: the later wins": (
        {"a.tar.zst": [file("p", b"from a\n")], "b.tar.zst": [file("p", b"from b\n")]},
        {b"p": b"from b\n"},
    ),
    "same symlink in two archives: the later wins": (
        {
            "a.tar.zst": [file("x", b"x\n"), symlink("p", "x")],
            "b.tar.zst": [file("y", b"y\n"), symlink("p", "y")],
        },
        {b"x": b"x\n", b"y": b"y\n", b"p": b"y\n"},
    ),
    "directories merge": (
        {
            "a.tar.zst": [directory("d/"), file("d/1", b"1\n")],
            "b.tar.zst": [file("d/2", b"2\n"), directory("d/e/")],
        },
        {b"d": None, b"d/1": b"1\n", b"d/2": b"2\n", b"d/e": None},
    ),
    "one archive: a repeated file, the later member wins": (
        {"a.tar.zst": [file("p", b"first\n"), file("p", b"second\n")]},
        {b"p": b"second\n"},
    ),
    "one archive: a hardlink keeps what its target was": (
        {"a.tar.zst": [file("t", b"old\n"), hardlink("h", "t"), file("t", b"new!\n")]},
        {b"t": b"new!\n", b"h": b"old\n"},
    ),
    "hardlink and a later archive's file at the target": (
        {"a.tar.zst": [file("t", b"a\n"), hardlink("h", "t")], "b.tar.zst": [file("t", b"bb\n")]},
        {b"t": b"bb\n", b"h": b"a\n"},
    ),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_same_kind_overlaps_publish_a_version_that_verifies_and_prepares(tmp_path: Path, case: str) -> None:
    archives, expected = ACCEPTED[case]
    remote = tmp_path / "remote"
    publish_raw_archives(remote, KEY, {name: tar_zst(members) for name, members in archives.items()})
    trip = journey(tmp_path, remote, KEY)
    assert trip.install.code == 0
    assert trip.verify is not None and trip.verify.code == 0
    assert set(trip.places) == set(VIEWS)
    for name, place in trip.places.items():
        assert view(place) == expected, name


def test_path_kinds_rule() -> None:
    kinds = PathKinds()
    assert kinds.place("a/b/c", FILE, "one") is None
    assert kinds.place("a/b", DIRECTORY, "two") is None  # already a directory: merged
    assert kinds.place("a/b/c", FILE, "two") is None  # same kind: the later one wins
    assert kinds.get("a/b/c") == Placed(FILE, "two", "a/b/c")
    assert kinds.get("a") == Placed(DIRECTORY, "one", "a/b/c")
    assert kinds.place("a", SYMLINK, "three") == Conflict(
        "a", Placed(DIRECTORY, "one", "a/b/c"), Placed(SYMLINK, "three", "a")
    )
    assert kinds.place("a/b/c/d", FILE, "three") == Conflict(
        "a/b/c", Placed(FILE, "two", "a/b/c"), Placed(DIRECTORY, "three", "a/b/c/d")
    )
    assert kinds.get("a/b/c/d") is None  # nothing recorded for a conflict
