"""A partial item is resumed only from the very remote object it started from (every remote, files
and archives); otherwise it starts again from zero, once, and fails cleanly if the object keeps
changing. The S3 multipart case with a real `kill -9` is in test_install_crash.py."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dscache.api.names import VersionKey
from dscache.api.spec import DatasetCacheSpec
from dscache.cli.app import main
from dscache.cli.render import JsonSink
from dscache.install.ingest import fetch_archive, fetch_file
from dscache.install.pipeline import default_remote_factory, install
from dscache.install.staging import StagingPaths
from dscache.layouts.plan import WorkItem
from dscache.remotes.base import ObjectChangedError, Pin, Remote, RemoteError
from dscache.remotes.file import FileRemote
from dscache.store.paths import CachePaths
from tests.factories import (
    content_for,
    dataset_snapshot,
    make_tree,
    publish_archives,
    tree_snapshot,
    version_items,
)
from tests.servers.files import FileServer
from tests.servers.hub import FakeHub

KEY = VersionKey("objects", "thor", "v1")


class _CutOnce:
    """A remote whose first download breaks after its first chunk, as a connection lost for longer
    than the retries last would: the install fails and leaves its partial file behind."""

    def __init__(self, inner: Remote, marker: Path) -> None:
        self._inner, self._marker = inner, marker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        for chunk in self._inner.stream(path, offset, length, pin):
            yield chunk
            if not self._marker.exists():
                self._marker.touch()
                raise RemoteError(f"{path}: connection lost (test)")


def _install(spec: DatasetCacheSpec, cache: Path, factory: Callable[[DatasetCacheSpec], Remote]) -> None:
    install(spec, cache, "default", JsonSink(io.StringIO()), jobs=1, remote_factory=factory)


def _spec(source: dict[str, Any]) -> DatasetCacheSpec:
    return DatasetCacheSpec.model_validate(
        {"source": source, "layout": "Files", "versions": version_items("objects/thor=v1")}
    )


def _partial(cache: Path, name: str) -> Path:
    """The one partial copy of `name` a failed install left."""
    staging = StagingPaths(CachePaths(cache).staging_dir(KEY))
    (token,) = staging.file_attempts(name)
    return staging.part(name, token)


def _unlocked() -> None:
    """The fence of a transfer that runs without the writer lock (nothing else writes here)."""


def test_file_remote_partial_of_a_replaced_file_is_not_resumed(tmp_path: Path) -> None:
    remote_dir = tmp_path / "remote"
    old, new = content_for("old", 3 << 20), content_for("new", 3 << 20)
    make_tree(remote_dir / KEY.rel, {"data/big.bin": old, "small.txt": "s"})
    spec, cache = _spec({"file": {"path": str(remote_dir)}}), tmp_path / "cache"
    cut = _CutOnce.__name__
    with pytest.raises(Exception, match="connection lost"):
        _install(spec, cache, lambda s: _CutOnce(default_remote_factory(s), tmp_path / cut))
    assert _partial(cache, "data/big.bin").stat().st_size == 1 << 20  # one chunk of the old file
    (remote_dir / KEY.rel / "data/big.bin").write_bytes(new)  # same size, same inode, other bytes
    _install(spec, cache, default_remote_factory)
    version = CachePaths(cache).version_dir(KEY)
    assert (version / "data/big.bin").read_bytes() == new
    assert main(["verify", "--cache", str(cache)]) == 0


def test_file_remote_partial_of_the_same_file_is_resumed(tmp_path: Path) -> None:
    remote_dir = tmp_path / "remote"
    data = content_for("same", 3 << 20)
    make_tree(remote_dir / KEY.rel, {"big.bin": data})
    spec, cache = _spec({"file": {"path": str(remote_dir)}}), tmp_path / "cache"
    with pytest.raises(Exception, match="connection lost"):
        _install(spec, cache, lambda s: _CutOnce(default_remote_factory(s), tmp_path / "cut"))
    staging = StagingPaths(CachePaths(cache).staging_dir(KEY))
    (token,) = staging.file_attempts("big.bin")
    assert staging.pin("big.bin", token).is_file()  # written before the first byte of the partial
    reads = tmp_path / "reads.txt"  # written by the worker processes

    class Counting(FileRemote):
        def stream(
            self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
        ) -> Iterator[bytes]:
            with open(reads, "a") as log:
                log.write(f"{path} {offset}\n")
            return super().stream(path, offset, length, pin)

    _install(spec, cache, lambda s: Counting(remote_dir))
    assert reads.read_text() == f"{KEY.rel}/big.bin 1048576\n"  # resumed where the cut left it
    assert (CachePaths(cache).version_dir(KEY) / "big.bin").read_bytes() == data


def test_hf_partial_of_a_file_changed_by_a_new_commit_is_not_resumed(tmp_path: Path, hub: FakeHub) -> None:
    old, new = content_for("old", 1 << 20), content_for("new", 1 << 20)
    hub.commit("org/data", {f"{KEY.rel}/table.json": old})  # not LFS: no sha256 to catch a splice
    spec = _spec({"huggingFace": {"repo": "org/data", "endpoint": hub.endpoint}})
    cache = tmp_path / "cache"
    with pytest.raises(Exception, match="connection lost"):
        _install(spec, cache, lambda s: _CutOnce(default_remote_factory(s), tmp_path / "cut"))
    assert 0 < _partial(cache, "table.json").stat().st_size < len(old)
    hub.commit("org/data", {f"{KEY.rel}/table.json": new})
    hub.log.clear()
    _install(spec, cache, default_remote_factory)
    assert (CachePaths(cache).version_dir(KEY) / "table.json").read_bytes() == new
    gets = [r for r in hub.log.find("*/resolve/*") if r.path.endswith("table.json")]
    assert [r.range for r in gets] == ["bytes=0-1048575"]  # all of it, from zero


# --- an object that changes under a running transfer starts over once ----------------------------


def _changing(path: Path, contents: list[bytes]) -> Callable[[int], None]:
    """A progress callback that rewrites `path` with the next content after an attempt's first bytes."""

    def progress(n: int) -> None:
        if n > 0 and contents:
            path.write_bytes(contents.pop(0))

    return progress


def test_a_file_changed_during_its_copy_is_copied_again_from_zero(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    first, second = content_for("first", 3 << 20), content_for("second", 3 << 20)
    make_tree(root, {"f.bin": first})
    remote = FileRemote(root)
    (listed,) = remote.list_files("")
    item = WorkItem(
        kind="file", name="f.bin", remote_path="f.bin", size=listed.size, identity=listed.identity
    )
    staging = StagingPaths(tmp_path / "staging")
    changed = _changing(root / "f.bin", [second])
    # The listing named `first`: starting over, the copy is held to it and `second` is refused.
    with pytest.raises(ObjectChangedError, match="again after starting over"):
        fetch_file(remote, item, staging, changed, fence=_unlocked)
    assert not (staging.files / "f.bin").exists() and staging.file_attempts("f.bin") == []
    # Without a listed identity (an archive, say) the new content is taken whole, never spliced.
    (root / "f.bin").write_bytes(first)
    unlisted = WorkItem(kind="file", name="f.bin", remote_path="f.bin", size=len(first))
    result = fetch_file(remote, unlisted, staging, _changing(root / "f.bin", [second]), fence=_unlocked)
    assert (staging.files / "f.bin").read_bytes() == second and result.size == len(second)


def test_an_archive_replaced_during_its_download_is_extracted_again(
    tmp_path: Path, http_server: FileServer
) -> None:
    tree_a = make_tree(tmp_path / "a", {"x.bin": 600_000, "y.txt": "a"})
    tree_b = make_tree(tmp_path / "b", {"x.bin": 700_000, "y.txt": "b"})
    built = tmp_path / "built"
    publish_archives(tree_b, built, KEY, archive_size=1 << 30, dscache_manifest=False)
    (archive_b,) = sorted(built.rglob("*.tar.zst"))
    publish_archives(tree_a, http_server.root, KEY, archive_size=1 << 30, dscache_manifest=False)
    (archive,) = sorted(http_server.root.rglob("*.tar.zst"))
    http_server.faults.truncate(after=200_000, path="*.tar.zst")  # so that a resume is needed
    from dscache.remotes.http import HttpRemote

    remote = HttpRemote(http_server.url)
    name = archive.name
    item = WorkItem(kind="archive", name=name, remote_path=f"{KEY.rel}/{name}")
    staging = StagingPaths(tmp_path / "staging")
    changed = _changing(archive, [archive_b.read_bytes()])
    result = fetch_archive(remote, item, staging, changed, fence=_unlocked)
    got = staging.archive_dir(name)
    assert dataset_snapshot(got) == tree_snapshot(tree_b)  # all of b, nothing of a
    assert result.size == archive_b.stat().st_size
    statuses = [r.status for r in http_server.log.find("*.tar.zst")]
    assert statuses == [206, 412, 206]  # cut, the resume refused (If-Match), then from zero
