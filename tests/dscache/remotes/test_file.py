"""FileRemote: a local directory as a remote."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscache.remotes.base import NotFoundError, ObjectChangedError, Pin, RemoteError
from dscache.remotes.file import FileRemote


@pytest.fixture
def remote(tmp_path: Path) -> FileRemote:
    root = tmp_path / "remote"
    (root / "dt/src/v1/sub").mkdir(parents=True)
    (root / "dt/src/v1/a.bin").write_bytes(bytes(range(256)) * 10)
    (root / "dt/src/v1/sub/b.json").write_bytes(b"{}")
    (root / "dt/other.txt").write_bytes(b"x")
    return FileRemote(root)


def test_read_stream_and_list(remote: FileRemote) -> None:
    data = bytes(range(256)) * 10
    assert remote.read_bytes("dt/src/v1/a.bin") == data
    assert b"".join(remote.stream("dt/src/v1/a.bin", 100, 50)) == data[100:150]
    assert b"".join(remote.stream("dt/src/v1/a.bin", 2000)) == data[2000:]
    assert [(f.path, f.size) for f in remote.list_files("dt/src/v1")] == [
        ("dt/src/v1/a.bin", 2560),
        ("dt/src/v1/sub/b.json", 2),
    ]
    assert remote.list_files("dt/none") == []


def test_missing_and_unsafe_paths(remote: FileRemote, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("outside")
    with pytest.raises(NotFoundError):
        remote.read_bytes("dt/missing")
    with pytest.raises(NotFoundError):
        b"".join(remote.stream("dt/missing"))
    for bad in ("../secret.txt", "/etc/passwd", "dt/../../secret.txt"):
        with pytest.raises(RemoteError, match="unsafe"):
            remote.read_bytes(bad)
    with pytest.raises(RemoteError, match="ends at"):
        b"".join(remote.stream("dt/src/v1/sub/b.json", 0, 10))


def test_put_is_atomic_and_leaves_no_temporaries(remote: FileRemote, tmp_path: Path) -> None:
    src = tmp_path / "upload.bin"
    src.write_bytes(b"new content")
    remote.put_file("dt/src/v2/new.bin", src)
    remote.put_file("dt/src/v2/new.bin", src)  # overwrite
    assert remote.read_bytes("dt/src/v2/new.bin") == b"new content"
    assert [f.path for f in remote.list_files("dt/src/v2")] == ["dt/src/v2/new.bin"]


def test_needs_an_absolute_root() -> None:
    with pytest.raises(RemoteError):
        FileRemote("relative/dir")


def test_a_file_rewritten_in_place_is_another_object(remote: FileRemote, tmp_path: Path) -> None:
    path = tmp_path / "remote/dt/src/v1/a.bin"
    (listed,) = [f for f in remote.list_files("dt/src/v1") if f.path.endswith("a.bin")]
    assert listed.identity.size == 2560 and listed.identity.etag
    pin = Pin(listed.identity)
    assert b"".join(remote.stream("dt/src/v1/a.bin", pin=pin)) == bytes(range(256)) * 10
    path.write_bytes(bytes(2560))  # same size, other bytes, same inode
    with pytest.raises(ObjectChangedError):
        b"".join(remote.stream("dt/src/v1/a.bin", 1000, pin=pin))


def test_a_file_changed_while_being_read_fails_the_read(tmp_path: Path) -> None:
    root = tmp_path / "big"
    root.mkdir()
    (root / "f.bin").write_bytes(bytes(3 << 20))
    chunks = FileRemote(root).stream("f.bin")
    first = next(chunks)
    with open(root / "f.bin", "r+b") as fh:
        fh.write(b"changed")
    with pytest.raises(ObjectChangedError):
        first + b"".join(chunks)
