"""FileRemote: a local directory as a remote. What every remote does is the conformance suite's
(test_conformance.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscache.remotes.base import RemoteError
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
