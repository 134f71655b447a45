"""A file finished in staging by an earlier run (interrupted, another team worker, a killed repair) is
published with the sha256 of its bytes, as an uninterrupted install publishes it: so `verify --content`
and `install --repair --content` hash every file, whatever the source."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dscache.api.names import VersionKey
from dscache.api.spec import DatasetCacheSpec
from dscache.cli.app import main
from dscache.cli.render import JsonSink
from dscache.install.pipeline import default_remote_factory, install
from dscache.remotes.base import Pin, Remote, RemoteError
from dscache.store.paths import ITEMS, CachePaths
from tests.factories import make_tree, version_items
from tests.servers.hub import FakeHub
from tests.servers.s3 import S3Env

KEY = VersionKey("objects", "many", "v1")
BIG = 1_200_000  # above the small-file batch size: one task each, fetched largest first (not LFS on HF)
FILES: dict[str, bytes] = {
    "a/one.dat": b"1" * (BIG + 300),
    "a/two.dat": b"2" * (BIG + 200),
    "b/three.dat": b"3" * (BIG + 100),
    "last.txt": b"fetched last\n",  # the smallest: fetched after the others are in staging
}
SHA256 = {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}


class _FailOn:
    """A remote whose downloads of `path` fail, as a source lost for longer than the retries last."""

    def __init__(self, inner: Remote, path: str) -> None:
        self._inner, self._path = inner, path

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        if path.endswith(self._path):
            raise RemoteError(f"{path}: connection lost (test)")
        return self._inner.stream(path, offset, length, pin)


def _failing(name: str) -> Callable[[DatasetCacheSpec], Remote]:
    return lambda spec: _FailOn(default_remote_factory(spec), name)


def _spec(source: dict[str, Any]) -> DatasetCacheSpec:
    return DatasetCacheSpec.model_validate(
        {"source": source, "layout": "Files", "versions": version_items(str(KEY))}
    )


def _install(
    spec: DatasetCacheSpec, cache: Path, factory: Callable[[DatasetCacheSpec], Remote], **kw: Any
) -> None:
    install(spec, cache, "default", JsonSink(io.StringIO()), jobs=1, remote_factory=factory, **kw)


def _recorded(cache: Path) -> dict[str, str | None]:
    items = json.loads((CachePaths(cache).version_dir(KEY) / ITEMS).read_text())["items"]
    return {name: entry["sha256"] for name, entry in items.items()}


def _tamper(cache: Path, name: str) -> None:
    """Overwrite a published file in place, keeping its size (root can; verify's size check cannot
    see it)."""
    path = CachePaths(cache).version_dir(KEY) / name
    data = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(b"X" * len(data))
    path.chmod(0o444)


def _source(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The files of FILES at KEY on a remote of `kind`, as a spec's source."""
    if kind == "s3":
        s3: S3Env = request.getfixturevalue("s3")
        for name, data in FILES.items():
            s3.put(f"{KEY.rel}/{name}", data)
        return {"s3": {"bucket": s3.bucket, "endpoint": s3.endpoint}}
    if kind == "hf":
        hub: FakeHub = request.getfixturevalue("hub")
        hub.commit("org/data", {f"{KEY.rel}/{name}": data for name, data in FILES.items()})
        return {"huggingFace": {"repo": "org/data", "endpoint": hub.endpoint}}
    make_tree(tmp_path / "remote" / KEY.rel, FILES)
    return {"file": {"path": str(tmp_path / "remote")}}


@pytest.mark.parametrize("kind", ["file", "s3", "hf"])
def test_files_finished_before_an_interruption_keep_their_digests(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, cache = _spec(_source(kind, tmp_path, request)), tmp_path / "cache"
    with pytest.raises(Exception, match="connection lost"):
        _install(spec, cache, _failing("last.txt"))
    staged = CachePaths(cache).staging_dir(KEY) / "files"
    assert sorted(p.name for p in staged.rglob("*.dat")) == ["one.dat", "three.dat", "two.dat"]
    _install(spec, cache, default_remote_factory)  # only last.txt is fetched now
    assert _recorded(cache) == SHA256
    _tamper(cache, "a/one.dat")  # finished by the interrupted run
    capsys.readouterr()
    assert main(["verify", "--cache", str(cache), "--content"]) == 1
    out, err = capsys.readouterr()
    assert "changed: a/one.dat" in out + err and "(4 file(s) hashed)" in out + err


def test_a_killed_repair_rerun_records_every_digest(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    spec, cache = _spec(_source("file", tmp_path, request)), tmp_path / "cache"
    _install(spec, cache, default_remote_factory)
    _tamper(cache, "last.txt")
    damaged = {KEY: frozenset({"last.txt"})}
    with pytest.raises(Exception, match="connection lost"):  # after linking the intact files
        _install(spec, cache, _failing("last.txt"), repair=damaged)
    _install(spec, cache, default_remote_factory, repair=damaged)
    assert (CachePaths(cache).version_dir(KEY) / "last.txt").read_bytes() == FILES["last.txt"]
    assert _recorded(cache) == SHA256


def test_a_team_install_records_every_workers_digests(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    source = _source("file", tmp_path, request)
    cache = tmp_path / "cache"
    argv = ["install", "-q", "--cache", str(cache), "--source", f"file://{source['file']['path']}"]
    argv += ["--layout", "Files", "--version", str(KEY), "--workers", "2"]
    assert main([*argv, "--worker-index", "0"]) == 0  # covers the vacant index 1 as well
    assert _recorded(cache) == SHA256


def test_a_staged_file_replaced_since_its_digest_was_logged_is_hashed_again(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    spec, cache = _spec(_source("file", tmp_path, request)), tmp_path / "cache"
    with pytest.raises(Exception, match="connection lost"):
        _install(spec, cache, _failing("last.txt"))
    staging = CachePaths(cache).staging_dir(KEY)
    other = b"9" * len(FILES["a/one.dat"])  # same size, other bytes, another inode
    (staging / "files" / "a" / "new.tmp").write_bytes(other)
    (staging / "files" / "a" / "new.tmp").replace(staging / "files" / "a" / "one.dat")
    logs = sorted((staging / "digests").iterdir())
    with open(logs[0], "ab") as log:
        log.write(b'{"name": "b/three.dat", "ino": 1')  # cut short by a crash
    _install(spec, cache, default_remote_factory)
    published = CachePaths(cache).version_dir(KEY) / "a" / "one.dat"
    assert _recorded(cache) == {**SHA256, "a/one.dat": hashlib.sha256(other).hexdigest()}
    assert published.read_bytes() == other  # staging is dscache's own: published with its bytes' digest
    assert main(["verify", "--cache", str(cache), "--content"]) == 0
