"""What every object-store remote must do, run against GCS (fake-gcs-server) and Azure Blob Storage
(Azurite), each over HTTP behind a fault-injecting proxy: ranged reads, listings, retries within
the one budget, resume of cut bodies conditional on the same object, never splicing two objects,
digests the store vouches for, uploads. Store-specific behaviour is in test_gcs.py / test_azure.py.

`GcsBackend` and `AzureBackend` have the shape of the conformance suite's `Backend` (fixture,
secrets, network, put, replace, open), so that suite takes them as they are once it lands; these
cases then duplicate it and can go.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from dscache.api.spec import Source
from dscache.remotes.azure import AZURITE_KEY, AzureRemote
from dscache.remotes.base import NotFoundError, ObjectChangedError, Pin, Remote, RemoteError
from dscache.remotes.factory import open_remote
from dscache.remotes.gcs import GcsRemote
from dscache.remotes.retry import RetryPolicy
from tests.servers.azure import ACCOUNT, AzureEnv
from tests.servers.faults import Faults, Request, RequestLog
from tests.servers.gcs import GcsEnv

DATA = os.urandom(1_200_000)
KEY = "objects/thor/v1/part-1.tar.zst"


@dataclass(frozen=True)
class Network:
    """The server's faults and log, and which request paths carry what (the shape of
    `Network` in the conformance suite, tests/dscache/remotes/conformance.py, being written)."""

    faults: Faults
    log: RequestLog
    data: Callable[[str], str]
    """Glob of the URL paths of the requests that carry the bytes of the object at a remote path."""
    listing: str
    """Glob of the URL paths of listing requests."""


class GcsBackend:
    """A bucket on fake-gcs-server behind the fault proxy, read under a prefix. Pinned by generation
    (ifGenerationMatch in the URL), so not `conditional` in the conformance suite's If-Match sense."""

    name: ClassVar[str] = "gcs"
    capabilities: ClassVar[frozenset[str]] = frozenset({"faults", "list", "write", "mutable", "digests"})
    PREFIX = "mirror"

    def __init__(self, env: GcsEnv) -> None:
        self.env = env

    @classmethod
    def fixture(cls, request: pytest.FixtureRequest) -> GcsBackend:
        return cls(request.getfixturevalue("gcs"))

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()

    @property
    def network(self) -> Network:
        server, bucket = self.env.server, self.env.bucket
        data = lambda path: self.env.media_glob(f"{self.PREFIX}/{path}")  # noqa: E731
        return Network(server.faults, server.log, data, f"/storage/v1/b/{bucket}/o")

    def put(self, path: str, data: bytes) -> None:
        self.env.put(f"{self.PREFIX}/{path}", data)

    def replace(self, path: str, data: bytes) -> None:
        self.env.put(f"{self.PREFIX}/{path}", data)  # a new generation

    def open(self, policy: RetryPolicy | None = None) -> Remote:
        return GcsRemote(self.env.bucket, self.PREFIX, endpoint=self.env.endpoint, policy=policy)


class AzureBackend:
    """A container on Azurite behind the fault proxy, read under a prefix with the account key."""

    name: ClassVar[str] = "azure"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"faults", "list", "write", "mutable", "conditional", "digests"}
    )
    PREFIX = "mirror"

    def __init__(self, env: AzureEnv) -> None:
        self.env = env

    @classmethod
    def fixture(cls, request: pytest.FixtureRequest) -> AzureBackend:
        return cls(request.getfixturevalue("azure"))

    @property
    def secrets(self) -> tuple[str, ...]:
        return (AZURITE_KEY,)

    @property
    def network(self) -> Network:
        server, container = self.env.server, self.env.container
        data = lambda path: self.env.blob_glob(f"{self.PREFIX}/{path}")  # noqa: E731
        return Network(server.faults, server.log, data, f"/{ACCOUNT}/{container}")

    def put(self, path: str, data: bytes) -> None:
        self.env.put(f"{self.PREFIX}/{path}", data)

    def replace(self, path: str, data: bytes) -> None:
        self.env.put(f"{self.PREFIX}/{path}", data)  # a new ETag

    def open(self, policy: RetryPolicy | None = None) -> Remote:
        return AzureRemote(
            ACCOUNT, self.env.container, self.PREFIX, endpoint=self.env.endpoint, policy=policy
        )


Backend = GcsBackend | AzureBackend


@dataclass
class Store:
    """One backend as the cases below see it: its remote (opened through the factory, from a spec)
    and the store and network behind it."""

    backend: Backend
    remote: Remote

    @property
    def net(self) -> Network:
        return self.backend.network

    def put(self, path: str, data: bytes) -> None:
        self.backend.put(path, data)

    def condition(self, request: Request) -> str | None:
        """The precondition a read carried: GCS ifGenerationMatch, Azure If-Match."""
        if self.backend.name == "gcs":
            found = [p for p in request.query.split("&") if p.startswith("ifGenerationMatch=")]
            return found[0].partition("=")[2] if found else None
        return request.headers.get("if-match")

    def reads(self, path: str) -> list[Request]:
        return self.net.log.find(self.net.data(path), method="GET")


@pytest.fixture(params=[GcsBackend, AzureBackend], ids=["gcs", "azure"])
def store(request: pytest.FixtureRequest) -> Store:
    backend: Backend = request.param.fixture(request)
    env = backend.env
    source = env.source(backend.PREFIX)
    return Store(backend, open_remote(Source.model_validate(source)))


@pytest.fixture
def seeded(store: Store) -> Store:
    store.put(KEY, DATA)
    store.put("objects/thor/v1/meta.json", b"{}")
    store.put("objects/thor/v1/folder/", b"")  # a console "folder": nothing to keep
    store.backend.env.put("other/objects/thor/v1/x.bin", b"x")  # outside the prefix
    store.net.log.clear()
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
    seeded.net.faults.status(503, times=3, path=seeded.net.data(KEY))
    assert seeded.remote.read_bytes(KEY) == DATA
    assert [r.status for r in seeded.reads(KEY)] == [503, 503, 503, 206]


def test_throttled_listing_is_retried(seeded: Store) -> None:
    seeded.net.faults.status(503, times=2, path=seeded.net.listing)
    assert len(seeded.remote.list_files("objects")) == 2


def test_persistent_failure_gives_up_within_the_budget(seeded: Store) -> None:
    seeded.net.faults.status(500, times=None, path=seeded.net.data(KEY))
    with pytest.raises(RemoteError, match="gave up after 5 attempt"):
        seeded.remote.read_bytes(KEY)
    assert len(seeded.reads(KEY)) == 5


def test_cut_bodies_resume_with_range_on_the_same_object(seeded: Store) -> None:
    seeded.net.faults.drop(after=300_000, times=1, path=seeded.net.data(KEY))
    seeded.net.faults.truncate(after=300_000, times=1, path=seeded.net.data(KEY))
    assert seeded.remote.read_bytes(KEY) == DATA
    first, second, third = seeded.reads(KEY)
    assert (first.fault, second.fault, third.fault) == ("drop", "truncate", None)
    assert first.range == "bytes=0-"
    for resumed in (second, third):
        assert resumed.range is not None and int(resumed.range.removeprefix("bytes=").split("-")[0]) > 0
        assert seeded.condition(resumed)  # conditional on the object the first answer named
    assert seeded.condition(second) == seeded.condition(third)


def test_short_and_lying_answers_are_continued(seeded: Store) -> None:
    seeded.net.faults.partial(64 << 10, times=2, path=seeded.net.data(KEY))
    seeded.net.faults.short(after=100_000, times=1, path=seeded.net.data(KEY))
    assert seeded.remote.read_bytes(KEY) == DATA
    assert [r.range for r in seeded.reads(KEY)][:3] == [
        "bytes=0-",
        "bytes=65536-1199999",
        "bytes=131072-1199999",
    ]


def test_an_object_replaced_mid_download_is_never_spliced(seeded: Store) -> None:
    seeded.net.faults.truncate(after=200_000, path=seeded.net.data(KEY))
    chunks = seeded.remote.stream(KEY)
    first = next(chunks)
    seeded.backend.replace(KEY, DATA[::-1])  # same size, other bytes
    with pytest.raises(ObjectChangedError, match="changed"):
        first + b"".join(chunks)


def test_a_listed_object_replaced_before_its_download_is_refused(seeded: Store) -> None:
    (listed,) = [f for f in seeded.remote.list_files("objects/thor/v1") if f.path == KEY]
    seeded.backend.replace(KEY, DATA[::-1])
    with pytest.raises(ObjectChangedError):
        b"".join(seeded.remote.stream(KEY, pin=Pin(listed.identity)))
    assert seeded.condition(seeded.reads(KEY)[0])


def test_missing_object_is_not_found_at_once(seeded: Store) -> None:
    with pytest.raises(NotFoundError):
        seeded.remote.read_bytes("objects/thor/v1/missing.json")
    assert len(seeded.reads("objects/thor/v1/missing.json")) == 1


def test_empty_object(seeded: Store) -> None:
    seeded.put("empty.json", b"")
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
    assert seeded.net.log.all() == []
