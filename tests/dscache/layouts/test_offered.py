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
