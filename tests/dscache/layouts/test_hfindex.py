"""The molmospaces HF shard index, read from a fake Hub without `datasets`, and Range fetches from shards."""

from __future__ import annotations

import os

import pytest

from dscache.layouts.hfindex import config_name, load_shard_index, stream_archive
from dscache.remotes.base import NotFoundError
from dscache.remotes.hf import HfRemote
from tests.servers.hfshards import index_parquet, readme, version_files
from tests.servers.hub import FakeHub

REPO = "allenai/molmospaces"
PREFIX = "mujoco"
REL = "objects/thor/20251117"
CONFIG = "mujoco__objects__thor__20251117"
ARCHIVES = {f"obj_{i:03d}.tar.zst": os.urandom(7_000 + 13_000 * i) for i in range(8)}


def _remote(hub: FakeHub) -> HfRemote:
    return HfRemote(REPO, prefix=PREFIX, revision="main", endpoint=hub.endpoint)


def test_config_name_follows_molmospaces() -> None:
    assert config_name(PREFIX, REL) == CONFIG
    assert config_name("", REL) == "objects__thor__20251117"


def test_index_from_readme_and_archives_fetched_by_range(hub: FakeHub) -> None:
    files, rows = version_files(PREFIX, REL, ARCHIVES, shard_bytes=100_000)
    assert len({r["shard_id"] for r in rows}) > 1
    hub.commit(REPO, {**files, "README.md": readme(["other__config", CONFIG])})
    remote = _remote(hub)
    index = load_shard_index(remote.root, remote.prefix, REL)
    assert set(index) == set(ARCHIVES)
    entry = index["obj_005.tar.zst"]
    assert entry.shard.startswith(f"{PREFIX}/{REL}/shards/") and entry.shard.endswith(".tar")
    assert entry.size == len(ARCHIVES["obj_005.tar.zst"])
    hub.log.clear()
    for name, data in ARCHIVES.items():
        assert b"".join(stream_archive(remote.root, index[name])) == data
    shard_reads = hub.log.find("/cdn/*")
    assert len(shard_reads) == len(ARCHIVES) and all(r.status == 206 and r.range for r in shard_reads)


def test_index_without_readme_falls_back_to_the_config_directory(hub: FakeHub) -> None:
    files, _ = version_files(PREFIX, REL, ARCHIVES)
    hub.commit(REPO, files)
    index = load_shard_index(_remote(hub).root, PREFIX, REL)
    assert set(index) == set(ARCHIVES)


def test_index_split_over_several_parquet_files(hub: FakeHub) -> None:
    files, rows = version_files(PREFIX, REL, ARCHIVES)
    del files[f"{CONFIG}/pkgs-00000-of-00001.parquet"]
    files[f"{CONFIG}/pkgs-00000-of-00002.parquet"] = index_parquet(rows[:3])
    files[f"{CONFIG}/pkgs-00001-of-00002.parquet"] = index_parquet(rows[3:])
    files[f"{CONFIG}/other-00000-of-00001.parquet"] = index_parquet(rows[:1])  # another split: ignored
    hub.commit(REPO, {**files, "README.md": readme([CONFIG])})
    assert set(load_shard_index(_remote(hub).root, PREFIX, REL)) == set(ARCHIVES)


def test_missing_index_is_not_found(hub: FakeHub) -> None:
    files, _ = version_files(PREFIX, REL, ARCHIVES)
    hub.commit(REPO, {**files, "README.md": readme([CONFIG])})
    with pytest.raises(NotFoundError, match="objects__thor__20990101"):
        load_shard_index(_remote(hub).root, PREFIX, "objects/thor/20990101")


def test_archive_fetch_resumes_inside_its_slice_of_the_shard(hub: FakeHub) -> None:
    files, _ = version_files(PREFIX, REL, ARCHIVES, shard_bytes=10_000_000)
    hub.commit(REPO, {**files, "README.md": readme([CONFIG])})
    remote = _remote(hub)
    entry = load_shard_index(remote.root, PREFIX, REL)["obj_007.tar.zst"]
    hub.log.clear()
    hub.faults.truncate(after=20_000, path="/cdn/*")
    assert b"".join(stream_archive(remote.root, entry)) == ARCHIVES["obj_007.tar.zst"]
    first, second = hub.log.find("/cdn/*")
    end = entry.offset + entry.size - 1
    assert first.range == f"bytes={entry.offset}-{end}"
    assert second.range == f"bytes={entry.offset + 20_000}-{end}"
