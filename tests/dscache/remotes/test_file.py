"""FileRemote: a local directory as a remote. What every remote does is the conformance suite's
(test_conformance.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dscache.remotes.base import Pin, RemoteError
from dscache.remotes.file import FileRemote


@pytest.fixture
def remote(tmp_path: Path) -> FileRemote:
    root = tmp_path / "remote"
    (root / "dt/src/v1/sub").mkdir(parents=True)
    (root / "dt/src/v1/a.bin").write_bytes(bytes(range(256)) * 10)
    (root / "dt/src/v1/sub/b.json").write_bytes(b"{}")
    (root / "dt/other.txt").write_bytes(b"x")
    return FileRemote(root)


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


def test_reads_never_leave_the_root_even_through_a_symlink_retargeted_after_the_listing(
    remote: FileRemote, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    link = tmp_path / "remote/dt/src/v1/link.bin"
    link.symlink_to("a.bin")
    [listed] = [f for f in remote.list_files("dt/src/v1") if f.path.endswith("link.bin")]
    link.unlink()
    link.symlink_to(tmp_path / "secret.txt")
    with pytest.raises(RemoteError, match=r"dt/src/v1/link.bin: symlink to .*secret.txt, outside"):
        b"".join(remote.stream(listed.path, pin=Pin(listed.identity)))
    with pytest.raises(RemoteError, match="outside"):
        remote.read_bytes("dt/src/v1/link.bin")


def test_a_fifo_is_refused_by_a_read_instead_of_blocking_it(remote: FileRemote, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "remote/dt/pipe")
    with pytest.raises(RemoteError, match="dt/pipe: a FIFO, not a regular file"):
        remote.read_bytes("dt/pipe")
