"""Safe extraction: each escape kind is refused naming archive and member; good archives land whole."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dscache.install.extract import extract_stream
from dscache.install.extracted import ArchiveRejectedError, links_escaping, place_member
from dscache.install.pathkinds import PathKinds
from dscache.store.members import check_member
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


def test_empty_chunks_are_not_the_end_of_the_stream(tmp_path: Path) -> None:
    # A stream may yield b"" (e.g. a decompressor with nothing to emit yet); libarchive reads 0 as EOF.
    import tarfile

    members = []
    for i in range(20):
        ti = tarfile.TarInfo(f"d/f{i}.bin")
        ti.size = 3000 + i
        members.append((ti, os.urandom(ti.size)))
    chunks = (piece for chunk in _chunks(tar_zst(members), 500) for piece in (b"", chunk, b""))
    result = extract_stream(chunks, tmp_path, "gappy.tar.zst")
    assert result.files == {f"d/f{i}.bin": 3000 + i for i in range(20)}
    assert all((tmp_path / name).read_bytes() == data for name, data in ((m.name, d) for m, d in members))


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
    def links() -> PathKinds:
        kinds = PathKinds()
        for name in ("a", "x/y"):
            assert place_member(kinds, name, "symlink", "a.tar.zst") is None
        return kinds

    assert place_member(links(), "a/b", "file", "a.tar.zst") is not None
    assert place_member(links(), "x/y/z/w", "dir", "a.tar.zst") is not None
    assert place_member(links(), "a", "file", "a.tar.zst") is not None
    assert place_member(links(), "ab/c", "file", "a.tar.zst") is None


def test_links_escaping_resolves_chains(tmp_path: Path) -> None:
    root = tmp_path / "v"
    (root / "d").mkdir(parents=True)
    os.symlink(".", root / "c")
    os.symlink("c/..", root / "x")  # lexically inside, physically the parent of the version
    os.symlink("d", root / "fine")
    assert links_escaping(root, ["c", "x", "fine"]) == ["x"]


_FLAT_MEMORY = """
import io, os, resource, sys, tarfile
from pathlib import Path
import zstandard
from dscache.install.extract import extract_stream

SIZE, CHUNK = 64 << 20, 1 << 20

def stream():
    # One 64 MiB file of random bytes as a .tar.zst, produced chunk by chunk (never whole in memory).
    info = tarfile.TarInfo("big.bin")
    info.size = SIZE
    z = zstandard.ZstdCompressor(level=1).compressobj()
    yield z.compress(info.tobuf(format=tarfile.PAX_FORMAT))
    for _ in range(SIZE // CHUNK):
        yield z.compress(os.urandom(CHUNK))
    yield z.compress(b"\\0" * 1024) + z.flush()

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
extract_stream(stream(), Path(sys.argv[1]), "big.tar.zst")
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_memory_stays_flat_however_big_the_archive(tmp_path: Path) -> None:
    # Peak RSS of a fresh process: extracting a 64 MiB member must not hold the stream's chunks.
    dest = tmp_path / "v"
    dest.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", _FLAT_MEMORY, str(dest)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert (dest / "big.bin").stat().st_size == 64 << 20
    assert int(out.stdout) < 24, f"peak RSS grew by {out.stdout.strip()} MB while extracting"


HELLO_SHA256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_each_regular_file_gets_the_sha256_of_its_bytes_hardlinks_included(tmp_path: Path) -> None:
    import tarfile

    def info(name: str, kind: bytes, size: int = 0, link: str = "") -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.size, ti.linkname, ti.mode = kind, size, link, 0o644
        return ti

    data = tar_zst(
        [
            (info("a/x.txt", tarfile.REGTYPE, 5), b"hello"),
            (info("a/empty", tarfile.REGTYPE, 0), b""),
            (info("a/hard", tarfile.LNKTYPE, link="a/x.txt"), None),
            (info("b/link", tarfile.SYMTYPE, link="../a/x.txt"), None),
        ]
    )
    result = extract_stream(_chunks(data, 7), tmp_path, "good.tar.zst")
    assert result.sha256 == {"a/x.txt": HELLO_SHA256, "a/empty": EMPTY_SHA256, "a/hard": HELLO_SHA256}
    assert result.unhashed() == []


def test_a_sparse_members_holes_are_hashed_as_the_zeros_they_read_back_as(tmp_path: Path) -> None:
    import hashlib

    import zstandard

    src = tmp_path / "src"
    src.mkdir()
    sparse = src / "holes.bin"
    with open(sparse, "wb") as fh:
        fh.write(b"head")
        fh.seek(3 << 20)
        fh.write(b"middle")
        fh.truncate(5 << 20)  # ends in a hole
    tar = tmp_path / "s.tar"
    subprocess.run(
        ["tar", "--sparse", "--format=gnu", "-cf", str(tar), "-C", str(src), "holes.bin"], check=True
    )
    data = zstandard.ZstdCompressor().compress(tar.read_bytes())
    dest = tmp_path / "dest"
    dest.mkdir()
    result = extract_stream(_chunks(data, 1 << 16), dest, "sparse.tar.zst")
    want = hashlib.sha256(sparse.read_bytes()).hexdigest()
    assert (dest / "holes.bin").read_bytes() == sparse.read_bytes()
    assert result.files == {"holes.bin": 5 << 20}
    assert result.sha256 == {"holes.bin": want}
