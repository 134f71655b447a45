"""Safe extraction: each escape kind is refused naming archive and member; good archives land whole."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dscache.extract import (
    ArchiveRejectedError,
    check_member,
    extract_stream,
    links_escaping,
    through_symlink,
)
from tests.factories import CORRUPT_KINDS, MALICIOUS_KINDS, corrupt_archive, malicious_archive, tar_zst


def _chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("kind", MALICIOUS_KINDS)
def test_every_escape_kind_is_rejected_naming_the_member(kind: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("precious")
    dest = tmp_path / "dest" / "v"
    dest.mkdir(parents=True)
    hostile = malicious_archive(kind, outside)
    with pytest.raises(ArchiveRejectedError) as err:
        extract_stream(_chunks(hostile.data), dest, "evil.tar.zst")
    assert err.value.archive == "evil.tar.zst"
    assert err.value.member is not None and err.value.member.rstrip("/").endswith(hostile.member.lstrip("/"))
    assert "evil.tar.zst" in str(err.value)
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_text() == "precious"
    assert not (tmp_path / "dest" / "escape-dotdot.txt").exists()
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("kind", CORRUPT_KINDS)
def test_corrupt_archives_fail_cleanly(kind: str, tmp_path: Path) -> None:
    with pytest.raises(ArchiveRejectedError, match=r"broken\.tar\.zst"):
        extract_stream(_chunks(corrupt_archive(kind)), tmp_path, "broken.tar.zst")


def test_good_archive_extracts_read_only_with_inventory(tmp_path: Path) -> None:
    import tarfile

    def info(name: str, kind: bytes, size: int = 0, link: str = "") -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.size, ti.linkname, ti.mode = kind, size, link, 0o644
        return ti

    data = tar_zst(
        [
            (info("./", tarfile.DIRTYPE), None),
            (info("a/", tarfile.DIRTYPE), None),
            (info("a/x.txt", tarfile.REGTYPE, 5), b"hello"),
            (info("a/empty", tarfile.REGTYPE, 0), b""),
            (info("b/link", tarfile.SYMTYPE, link="../a/x.txt"), None),
            (info("a/hard", tarfile.LNKTYPE, link="a/x.txt"), None),
        ]
    )
    result = extract_stream(_chunks(data, 7), tmp_path, "good.tar.zst")
    assert result.files == {"a/x.txt": 5, "a/empty": 0, "a/hard": 5}
    assert result.links == {"b/link": "../a/x.txt"}
    assert (tmp_path / "b" / "link").read_text() == "hello"
    assert (tmp_path / "a" / "hard").read_text() == "hello"
    assert (tmp_path / "a" / "x.txt").stat().st_mode & 0o777 == 0o444


def test_download_errors_propagate_unchanged(tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    def failing() -> Iterator[bytes]:
        yield b"\x28\xb5\x2f\xfd"
        raise Boom("connection lost")

    with pytest.raises(Boom, match="connection lost"):
        extract_stream(failing(), tmp_path, "x.tar.zst")


@pytest.mark.parametrize(
    ("name", "kind", "link", "reason"),
    [
        ("ok/file", "file", None, None),
        ("/etc/passwd", "file", None, "absolute"),
        ("a/../../x", "file", None, ".."),
        (".dscache-complete.json", "file", None, "reserved"),
        ("l", "symlink", "/etc", "absolute"),
        ("d/l", "symlink", "../../x", "escapes"),
        ("d/l", "symlink", "../x", None),
        ("h", "hardlink", "../x", "escapes"),
        ("dev", "other", None, "device"),
    ],
)
def test_check_member_rules(name: str, kind: str, link: str | None, reason: str | None) -> None:
    got = check_member(name, kind, link)
    assert (got is None) if reason is None else (got is not None and reason in got)


def test_nothing_may_pass_through_or_replace_an_extracted_symlink() -> None:
    links = {"a", "x/y"}
    assert through_symlink("a/b", "file", links) is not None
    assert through_symlink("x/y/z/w", "dir", links) is not None
    assert through_symlink("a", "file", links) is not None
    assert through_symlink("ab/c", "file", links) is None


def test_links_escaping_resolves_chains(tmp_path: Path) -> None:
    root = tmp_path / "v"
    (root / "d").mkdir(parents=True)
    os.symlink(".", root / "c")
    os.symlink("c/..", root / "x")  # lexically inside, physically the parent of the version
    os.symlink("d", root / "fine")
    assert links_escaping(root, ["c", "x", "fine"]) == ["x"]
