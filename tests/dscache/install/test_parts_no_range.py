"""Objects big enough for parts, from servers that ignore Range (a 200 with the whole object for every
ranged GET, like nginx with `max_ranges 0`): each object comes in one GET, its bytes sent once, for
archives (extracted in order) and plain files (written at offsets, resumable part by part); a
partial file's record lists only the parts it holds; a replaced object still fails its transfer.
Parts are made small (DSCACHE_PART_SIZE) so that objects of a few MiB are cut into several."""

from __future__ import annotations

import json
import os
from hashlib import sha256
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.install.ingest import ItemResult, Progress, fetch_file
from dscache.install.staging import StagingPaths
from dscache.layouts.plan import WorkItem
from dscache.remotes.base import Identity, Pin, RemoteError
from dscache.remotes.http import HttpRemote
from dscache.store.paths import CachePaths
from tests.factories import content_for, dataset_snapshot, make_tree, publish_archives, tree_snapshot
from tests.servers.files import FileServer
from tests.servers.httpbase import file_etag
from tests.servers.hub import FakeHub

KEY = VersionKey("objects", "thor", "v1")
MIB = 1 << 20
PARTS = [f"bytes={n * MIB}-{(n + 1) * MIB - 1}" for n in range(6)]
"""The ranged GETs of a 6 MiB object in parts of 1 MiB."""


@pytest.fixture(autouse=True)
def _small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSCACHE_PART_SIZE", str(MIB))
    monkeypatch.setenv("DSCACHE_STREAMS", "4")
    monkeypatch.setenv("DSCACHE_RETRY_BASE_DELAY", "0.01")


def _unlocked() -> None:
    """The fence of a transfer that runs without the writer lock (nothing else writes here)."""


def _file_item(data: bytes, identity: Identity | None = None) -> WorkItem:
    """weights.bin with its size and sha256 (as a manifest states them) and what a listing says."""
    return WorkItem(
        kind="file",
        name="weights.bin",
        remote_path="weights.bin",
        size=len(data),
        sha256=sha256(data).hexdigest(),
        identity=identity or Identity(),
    )


def _fetch(
    url: str, item: WorkItem, staging: StagingPaths, progress: Progress = lambda n: None
) -> ItemResult:
    """`fetch_file` of `item` from the HTTP server at `url`, over up to 4 streams."""
    return fetch_file(HttpRemote(url), item, staging, progress, fence=_unlocked, streams=4)


def _replace(path: Path, data: bytes) -> None:
    """Put `data` at `path` as a new file (an answer being sent keeps reading the old one)."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


def _replacing(path: Path, data: bytes) -> tuple[Progress, list[int]]:
    """A progress callback that replaces the object at `path` on the first bytes counted."""
    replaced: list[int] = []

    def progress(n: int) -> None:
        if n > 0 and not replaced:
            replaced.append(n)
            _replace(path, data)

    return progress, replaced


def test_archives_in_parts_from_a_server_ignoring_range_come_in_one_get_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_tree(
        tmp_path / "tree", {f"d{i}/blob.bin": content_for(f"blob{i}", 3 * MIB) for i in range(2)}
    )
    with FileServer(tmp_path / "www", ranges=False) as server:
        publish_archives(tree, server.root, KEY, archive_size=3 * MIB)
        archives = sorted(server.root.rglob("*.tar.zst"))
        assert len(archives) == 2 and all(a.stat().st_size >= 3 * MIB for a in archives)  # 3 parts or more
        cache = tmp_path / "cache"
        args = ["install", "-v", "--cache", str(cache), "--source", server.url, "--version", str(KEY)]
        assert main(args) == 0
        gets = server.log.find("*.tar.zst", method="GET")
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(tree)
    # One GET per archive, answered 200 with the whole archive, which was read to its end: every
    # byte sent once (a second GET, or a part's own GET, would have sent it again).
    assert sorted((r.path, r.status) for r in gets) == sorted(
        (f"/{a.relative_to(server.root).as_posix()}", 200) for a in archives
    )
    assert all(r.range == "bytes=0-1048575" for r in gets)  # the first part's Range, ignored
    err = capsys.readouterr().err
    assert err.count("the server ignores Range (it answers with the whole object)") == 1  # once per install


def test_a_file_in_parts_from_a_hub_cdn_ignoring_range_comes_in_one_get(
    tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = content_for("weights", 6 * MIB)
    hub.commit(
        "org/model", {f"{KEY.rel}/weights.bin": data, f"{KEY.rel}/config.json": b"{}"}, repo_type="model"
    )
    hub.faults.norange(times=None, path="/cdn/*")  # the LFS blobs' CDN ignores Range
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    cache = tmp_path / "cache"
    args = ["install", "--cache", str(cache), "--source", "hf://models/org/model", "--layout", "files"]
    assert main([*args, "--version", "objects/thor=v1"]) == 0
    assert (CachePaths(cache).version_dir(KEY) / "weights.bin").read_bytes() == data
    blob = f"/cdn/{sha256(data).hexdigest()}"
    assert [(r.status, r.range) for r in hub.log.find(blob, method="GET")] == [(200, PARTS[0])]
    assert len(hub.log.find(f"*/resolve/*/{KEY.rel}/weights.bin", method="GET")) == 1


def test_a_file_cut_in_its_one_stream_records_the_parts_it_holds_and_resumes_from_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSCACHE_RETRY_ATTEMPTS", "1")  # the cut ends the first run
    data = content_for("weights", 6 * MIB)
    staging = StagingPaths(tmp_path / "staging")
    with FileServer(tmp_path / "www", ranges=False) as server:
        listed = _file_item(data, Identity(etag=file_etag(server.put("weights.bin", data))))
        server.faults.truncate(after=5 * MIB // 2, times=1)  # 2.5 MiB of the whole file, then FIN
        with pytest.raises(RemoteError, match="gave up after 1 attempt"):
            _fetch(server.url, listed, staging)
        assert len(server.log) == 1
        records = sorted((staging.root / "pins").glob("weights.bin.*.json"))
        # Parts 0 and 1 arrived whole; half of part 2 is in the file but not listed.
        assert [json.loads(r.read_text())["done"] for r in records] == [[[0, 2 * MIB]]]
        server.log.clear()
        result = _fetch(server.url, listed, staging)
        gets = server.log.find("/weights.bin", method="GET")
    assert (staging.files / "weights.bin").read_bytes() == data and result.size == len(data)
    # The object is the one listed: the rest, parts 2-5, in one GET held to it, not one per part.
    assert [(r.status, r.range, bool(r.headers.get("if-match"))) for r in gets] == [(200, PARTS[2], True)]


def test_an_object_replaced_while_its_one_stream_was_cut_is_fetched_again_whole(tmp_path: Path) -> None:
    old, new = content_for("old", 6 * MIB), content_for("new", 6 * MIB)
    staging = StagingPaths(tmp_path / "staging")
    with FileServer(tmp_path / "www", ranges=False) as server:
        path = server.put("weights.bin", old)
        server.faults.truncate(after=5 * MIB // 2, times=1)
        progress, replaced = _replacing(path, new)
        result = _fetch(server.url, _file_item(new), staging, progress)
        gets = server.log.find("/weights.bin", method="GET")
    assert replaced
    assert (staging.files / "weights.bin").read_bytes() == new and result.size == len(new)
    # The resume after the cut was held to the old object (412): the transfer started over from 0
    # on the new one, in one GET again; no byte of the old object was kept.
    resumed = f"bytes={5 * MIB // 2}-{6 * MIB - 1}"
    assert [(r.status, r.range) for r in gets] == [(200, PARTS[0]), (412, resumed), (200, PARTS[0])]


def test_an_object_replaced_while_its_ranged_parts_download_over_http_is_fetched_again_whole(
    tmp_path: Path, http_server: FileServer
) -> None:
    old, new = content_for("old", 6 * MIB), content_for("new", 6 * MIB)
    path = http_server.put("weights.bin", old)
    progress, replaced = _replacing(path, new)  # when part 0 is in: parts 4 and 5 start after that
    staging = StagingPaths(tmp_path / "staging")
    result = _fetch(http_server.url, _file_item(new), staging, progress)
    assert replaced
    assert (staging.files / "weights.bin").read_bytes() == new and result.size == len(new)
    gets = http_server.log.find("/weights.bin", method="GET")
    refused = [i for i, r in enumerate(gets) if r.status == 412]
    assert refused  # parts asked for after the replacement were held to the old object
    again = gets[max(refused) + 1 :]
    assert sorted((r.status, r.range) for r in again) == sorted((206, p) for p in PARTS)


def test_only_a_whole_answer_to_a_request_for_less_tells_that_range_is_ignored(tmp_path: Path) -> None:
    with FileServer(tmp_path / "www", ranges=False) as server:
        server.put("f.bin", bytes(1000))
        remote = HttpRemote(server.url)
        told = {}
        for offset, length, expected in ((0, None, 1000), (0, 1000, 1000), (0, 10, 10), (5, None, 995)):
            pin = Pin()
            assert len(b"".join(remote.stream("f.bin", offset, length, pin))) == expected
            told[offset, length] = pin.whole_bodies
    # A 200 to a request for the whole object (bytes=0- or bytes=0-999) proves nothing about Range.
    assert told == {(0, None): False, (0, 1000): False, (0, 10): True, (5, None): True}
