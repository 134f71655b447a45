"""How a listing is cut into versions for `dscache ls-remote` (dscache.layouts.offered)."""

from __future__ import annotations

from dscache.api.names import VersionKey
from dscache.layouts.offered import Offered, offered_versions
from dscache.remotes.base import RemoteFile

MOLMO = "mjthor_resource_file_to_size_mb.json"


def _files(*paths: tuple[str, int]) -> list[RemoteFile]:
    return [RemoteFile(path, size) for path, size in paths]


def test_what_lies_below_an_archives_version_is_neither_counted_nor_a_files_version() -> None:
    listing = _files(
        (f"objects/thor/v1/{MOLMO}", 20),
        ("objects/thor/v1/a.tar.zst", 100),
        ("objects/thor/v1/extra/notes/n.txt", 7),  # below the version dir: not one of its archives
        ("objects/thor/v2/a.tar.zst", 5),  # no manifest: a files version in auto mode
    )
    assert offered_versions(listing) == [
        Offered(VersionKey("objects", "thor", "v1"), "v1", "Archives", files=2, bytes=120),
        Offered(VersionKey("objects", "thor", "v2"), "v2", "Files", files=1, bytes=5),
    ]
    assert offered_versions(listing, layout="Archives") == offered_versions(listing)[:1]
    assert offered_versions(listing, layout="Files") == [
        Offered(VersionKey("objects", "thor", "v1"), "v1", "Files", files=3, bytes=127),
        Offered(VersionKey("objects", "thor", "v2"), "v2", "Files", files=1, bytes=5),
    ]


def test_names_that_cannot_be_versions_are_left_out() -> None:
    listing = _files(("README.md", 3), (".hidden/a/b/c", 1), ("a/b/.git/x", 1), (f"x/{MOLMO}", 2))
    assert offered_versions(listing) == []


def test_a_molmospaces_manifest_in_a_subdirectory_of_a_files_version_is_one_of_its_files() -> None:
    listing = _files(("models/y/v1/a.txt", 3), (f"models/y/v1/sub/{MOLMO}", 2))
    assert offered_versions(listing) == [
        Offered(VersionKey("models", "y", "v1"), "v1", "Files", files=2, bytes=5),
    ]
    assert offered_versions(listing, layout="Archives") == []


def test_an_archives_version_whose_source_holds_a_slash_is_still_found() -> None:
    listing = _files(
        (f"objects/objaverse/part1/v1/{MOLMO}", 2),
        ("objects/objaverse/part1/v1/a.tar.zst", 10),
        (f"objects/objaverse/part1/v2/{MOLMO}", 2),
    )
    assert offered_versions(listing) == [
        Offered(VersionKey("objects", "objaverse/part1", "v1"), "v1", "Archives", files=2, bytes=12),
        Offered(VersionKey("objects", "objaverse/part1", "v2"), "v2", "Archives", files=1, bytes=2),
    ]


def test_a_files_version_install_would_reject_is_offered_refused_with_installs_reason() -> None:
    listing = _files(
        ("models/x/v1/a.txt", 3),
        ("models/x/v1/.dscache-complete.json", 2),
        ("models/z/v1/page", 1),
        ("models/z/v1/page/index.html", 1),
        ("models/ok/v1/b.txt", 1),
    )
    found = {o.names or (o.key.data_type, o.key.source): o for o in offered_versions(listing) if o}
    assert found[("models", "ok")].refused is None
    assert found[("models", "x")].refused == (
        "models/x/v1: remote file '.dscache-complete.json' rejected: name reserved for dscache metadata"
    )
    assert found[("models", "x")].files == 2
    assert found[("models", "z")].refused is not None and "page" in found[("models", "z")].refused


def test_a_manifest_below_an_archives_version_is_not_a_version_of_its_own() -> None:
    listing = _files(
        (f"objects/thor/v1/{MOLMO}", 20),
        ("objects/thor/v1/a.tar.zst", 100),
        (f"objects/thor/v1/extra/{MOLMO}", 3),
    )
    assert offered_versions(listing) == [
        Offered(VersionKey("objects", "thor", "v1"), "v1", "Archives", files=2, bytes=120),
    ]
