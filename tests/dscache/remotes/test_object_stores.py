"""What GCS (fake-gcs-server) and Azure Blob Storage (Azurite) share beyond the remote conformance
suite (which runs both, test_conformance.py): a remote opened through the factory from a spec, the
md5 each store vouches for in listings and answers, the precondition each store's resumes carry
(GCS ifGenerationMatch, Azure If-Match), console "folder" placeholders. Store-specific behaviour is
in test_gcs.py / test_azure.py.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from dscache.api.spec import Source
from dscache.remotes.base import ObjectChangedError, Pin, Remote
from dscache.remotes.factory import open_remote
from tests.dscache.remotes.conformance import AzureBackend, GcsBackend, Network
from tests.servers.faults import Request

DATA = os.urandom(1_200_000)
KEY = "objects/thor/v1/part-1.tar.zst"


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


def test_a_listed_object_replaced_before_its_download_is_refused(seeded: Store) -> None:
    (listed,) = [f for f in seeded.remote.list_files("objects/thor/v1") if f.path == KEY]
    seeded.backend.replace(KEY, DATA[::-1])
    with pytest.raises(ObjectChangedError):
        b"".join(seeded.remote.stream(KEY, pin=Pin(listed.identity)))
    assert seeded.condition(seeded.reads(KEY)[0])


def test_put_file_then_read_back_with_its_md5(seeded: Store, tmp_path: Path) -> None:
    local = tmp_path / "a.bin"
    local.write_bytes(b"uploaded bytes" * 1000)
    seeded.remote.put_file("objects/thor/v2/a.bin", local)
    pin = Pin()
    assert b"".join(seeded.remote.stream("objects/thor/v2/a.bin", pin=pin)) == local.read_bytes()
    assert pin.checksums["md5"] == hashlib.md5(local.read_bytes()).hexdigest()
    (listed,) = seeded.remote.list_files("objects/thor/v2")
    assert listed.md5 == hashlib.md5(local.read_bytes()).hexdigest()
