"""What every object-store remote must do, run against GCS (fake-gcs-server) and Azure Blob Storage
(Azurite), each over HTTP behind a fault-injecting proxy: ranged reads, listings, retries within
the one budget, resume of cut bodies conditional on the same object, never splicing two objects,
digests the store vouches for, uploads. Store-specific behaviour is in test_gcs.py / test_azure.py.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dscache.api.spec import Source
from dscache.remotes.base import NotFoundError, ObjectChangedError, Pin, Remote, RemoteError
from dscache.remotes.factory import open_remote
from tests.servers.azure import AzureEnv
from tests.servers.faults import Faults, Request, RequestLog
from tests.servers.gcs import GcsEnv

DATA = os.urandom(1_200_000)
KEY = "objects/thor/v1/part-1.tar.zst"


@dataclass
class Store:
    """One backend as the cases see it: a remote on prefix `mirror`, and the store behind it."""

    kind: str
    remote: Remote
    put: Callable[[str, bytes], Any]
    """Seed or replace the object at a key (relative to the bucket or container)."""
    glob: Callable[[str], str]
    """The URL-path glob of reads of a key (faults and the log)."""
    faults: Faults
    log: RequestLog

    def condition(self, request: Request) -> str | None:
        """The precondition a read carried: GCS ifGenerationMatch, Azure If-Match."""
        if self.kind == "gcs":
            found = [p for p in request.query.split("&") if p.startswith("ifGenerationMatch=")]
            return found[0].partition("=")[2] if found else None
        return request.headers.get("if-match")

    def reads(self, key: str) -> list[Request]:
        return self.log.find(self.glob(key), method="GET")


@pytest.fixture(params=["gcs", "azure"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "gcs":
        env: GcsEnv = request.getfixturevalue("gcs")
        return Store(
            "gcs",
            open_remote(Source.model_validate(env.source("mirror"))),
            env.put,
            lambda key: env.media_glob(f"mirror/{key}"),
            env.server.faults,
            env.server.log,
        )
    az: AzureEnv = request.getfixturevalue("azure")
    return Store(
        "azure",
        open_remote(Source.model_validate(az.source("mirror"))),
        az.put,
        lambda key: az.blob_glob(f"mirror/{key}"),
        az.server.faults,
        az.server.log,
    )


@pytest.fixture
def seeded(store: Store) -> Store:
    store.put(f"mirror/{KEY}", DATA)
    store.put("mirror/objects/thor/v1/meta.json", b"{}")
    store.put("mirror/objects/thor/v1/folder/", b"")  # a console "folder": nothing to keep
    store.put("other/x.bin", b"x")
    store.log.clear()
    return store


def test_reads_ranges_and_lists_what_identifies_each_object(seeded: Store) -> None:
    remote = seeded.remote
    assert remote.read_bytes(KEY) == DATA
    assert b"".join(remote.stream(KEY, 100, 1000)) == DATA[100:1100]
    files = remote.list_files("objects/thor/v1")
    assert [(f.path, f.size) for f in files] == [
        ("objects/thor/v1/meta.json", 2),
        ("objects/thor/v1/part-1.tar.zst", len(DATA)),
    ]
    assert files[1].md5 == hashlib.md5(DATA).hexdigest()
    assert files[1].identity.validated and files[1].identity.size == len(DATA)
    assert remote.list_files("objects/nothing-here") == []
    assert remote.url.endswith("/mirror")


def test_a_read_records_the_whole_objects_md5(seeded: Store) -> None:
    pin = Pin()
    assert b"".join(seeded.remote.stream(KEY, 10, 100, pin=pin)) == DATA[10:110]
    assert pin.checksums["md5"] == hashlib.md5(DATA).hexdigest()
    assert pin.identity.size == len(DATA)


def test_5xx_burst_is_survived(seeded: Store) -> None:
    seeded.faults.status(503, times=3, path=seeded.glob(KEY))
    assert seeded.remote.read_bytes(KEY) == DATA
    assert [r.status for r in seeded.reads(KEY)] == [503, 503, 503, 206]


def test_throttled_listing_is_retried(seeded: Store) -> None:
    seeded.faults.status(503, times=2, path="*")
    assert len(seeded.remote.list_files("objects")) == 2


def test_persistent_failure_gives_up_within_the_budget(seeded: Store) -> None:
    seeded.faults.status(500, times=None, path=seeded.glob(KEY))
    with pytest.raises(RemoteError, match="gave up after 5 attempt"):
        seeded.remote.read_bytes(KEY)
    assert len(seeded.reads(KEY)) == 5


def test_cut_bodies_resume_with_range_on_the_same_object(seeded: Store) -> None:
    seeded.faults.drop(after=300_000, times=1, path=seeded.glob(KEY))
    seeded.faults.truncate(after=300_000, times=1, path=seeded.glob(KEY))
    assert seeded.remote.read_bytes(KEY) == DATA
    first, second, third = seeded.reads(KEY)
    assert (first.fault, second.fault, third.fault) == ("drop", "truncate", None)
    assert first.range == "bytes=0-"
    for resumed in (second, third):
        assert resumed.range is not None and int(resumed.range.removeprefix("bytes=").split("-")[0]) > 0
        assert seeded.condition(resumed)  # conditional on the object the first answer named
    assert seeded.condition(second) == seeded.condition(third)


def test_short_and_lying_answers_are_continued(seeded: Store) -> None:
    seeded.faults.partial(64 << 10, times=2, path=seeded.glob(KEY))
    seeded.faults.short(after=100_000, times=1, path=seeded.glob(KEY))
    assert seeded.remote.read_bytes(KEY) == DATA
    assert [r.range for r in seeded.reads(KEY)][:3] == [
        "bytes=0-",
        "bytes=65536-1199999",
        "bytes=131072-1199999",
    ]


def test_an_object_replaced_mid_download_is_never_spliced(seeded: Store) -> None:
    seeded.faults.truncate(after=200_000, path=seeded.glob(KEY))
    chunks = seeded.remote.stream(KEY)
    first = next(chunks)
    seeded.put(f"mirror/{KEY}", DATA[::-1])  # same size, other bytes
    with pytest.raises(ObjectChangedError, match="changed"):
        first + b"".join(chunks)


def test_a_listed_object_replaced_before_its_download_is_refused(seeded: Store) -> None:
    (listed,) = [f for f in seeded.remote.list_files("objects/thor/v1") if f.path == KEY]
    seeded.put(f"mirror/{KEY}", DATA[::-1])
    with pytest.raises(ObjectChangedError):
        b"".join(seeded.remote.stream(KEY, pin=Pin(listed.identity)))
    assert seeded.condition(seeded.reads(KEY)[0])


def test_missing_object_is_not_found_at_once(seeded: Store) -> None:
    with pytest.raises(NotFoundError):
        seeded.remote.read_bytes("objects/thor/v1/missing.json")
    assert len(seeded.reads("objects/thor/v1/missing.json")) == 1


def test_empty_object(seeded: Store) -> None:
    seeded.put("mirror/empty.json", b"")
    assert seeded.remote.read_bytes("empty.json") == b""


def test_put_file_then_read_back_with_its_md5(seeded: Store, tmp_path: Path) -> None:
    local = tmp_path / "a.bin"
    local.write_bytes(b"uploaded bytes" * 1000)
    seeded.remote.put_file("objects/thor/v2/a.bin", local)
    pin = Pin()
    assert b"".join(seeded.remote.stream("objects/thor/v2/a.bin", pin=pin)) == local.read_bytes()
    assert pin.checksums["md5"] == hashlib.md5(local.read_bytes()).hexdigest()
    (listed,) = seeded.remote.list_files("objects/thor/v2")
    assert listed.md5 == hashlib.md5(local.read_bytes()).hexdigest()


def test_unsafe_paths_are_refused_before_any_request(seeded: Store) -> None:
    for bad in ("../x", "/abs", "a//b"):
        with pytest.raises(RemoteError, match="unsafe remote path"):
            seeded.remote.read_bytes(bad)
    assert seeded.log.all() == []
