"""The remote conformance suite's backends: what `test_conformance.py` needs from each remote, and the
adapters of today's six (local directory, plain HTTP, S3 on moto, the Hugging Face Hub, GCS on
fake-gcs-server, Azure Blob Storage on Azurite).

Like fsspec's abstract tests (`fsspec/tests/abstract`), the tests are written once against a small
fixture protocol and every backend runs them, so a new backend inherits the whole contract of
`dscache.remotes.base.Remote`: reads, ranges, listings, empty objects, missing-is-`NotFoundError`,
5xx bursts and throttling within the retry budget, dropped and cut connections resumed at the right
byte, short and lying bodies, stalls, every legal answer to a Range request, corrupted bodies caught
by verification, and downloads pinned to one object (`ObjectChangedError` instead of a splice).

A backend states its capabilities; a test runs against every backend that has the capabilities the
test `needs` (and, for the tests of what a backend without one does, `lacks`):

    faults       served over HTTP by a test server in tests/servers, so `network` gives the server's
                 `faults` and request `log` (5xx, drops, cuts, lying lengths, stalls, corruption and
                 every Range answer: partial, early, late, norange, nocontentrange, multipart,
                 chunked, unframed)
    list         `list_files` works (without it, it raises RemoteError "cannot list")
    write        `put_file` works (without it, it raises RemoteError "read-only")
    mutable      an object replaced under its name is another object to an open remote: a download
                 pinned to the old one raises ObjectChangedError; without it (the Hub, read at a
                 pinned commit) an open remote keeps reading the bytes of its revision
    conditional  every request of a pinned download carries If-Match on the pinned ETag, and a
                 replaced object is refused by the server (412)
    digests      the listing or the answers vouch for a digest of the whole object (LFS sha256, MD5
                 ETag, stored checksums), so `install.ingest` catches a corrupted body

Adding a backend:
1. Serve it on 127.0.0.1. A store whose server is not ours (fake-gcs-server, Azurite) runs behind
   `tests.servers.proxy.FaultProxy`, which forwards every request and gives it the shared `faults`
   and `log` (S3's `tests.servers.s3.MotoS3` is one; subclass `ProxyHandler` where the emulator must
   be made to answer as the real store does). Add its fixture to tests/conftest.py.
2. Write a class implementing `Backend` below: `put` seeds an object directly in the store (not
   through the proxy: no fault, no log line), `replace` puts other bytes of the same size under the
   same name so that the store names it another object (new ETag or generation), `open` builds the
   `Remote` under test at a base prefix, `network.data(path)` is the glob of the request paths that
   carry an object's bytes (what faults are armed on and the log is read for), `network.listing`
   that of listing requests, `network.resume_slack` how many received bytes a cut may lose (a client
   that only hands over whole reads, as botocore does with 256 KiB).
3. Append the class to `BACKENDS`. Then `pytest tests/dscache/remotes/test_conformance.py -k gcs`.
A test the new backend fails is a bug in the backend, or a difference of contract to settle in
`remotes/base.py` for every backend; never a reason to give it a capability it lacks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, Protocol

import pytest

from dscache.remotes.azure import AZURITE_KEY, AzureRemote
from dscache.remotes.base import Remote
from dscache.remotes.file import FileRemote
from dscache.remotes.gcs import GcsRemote
from dscache.remotes.hf import HfRemote
from dscache.remotes.http import HttpRemote
from dscache.remotes.retry import RetryPolicy
from dscache.remotes.s3 import S3Remote
from tests.servers.azure import ACCOUNT, AzureEnv
from tests.servers.faults import Faults, RequestLog
from tests.servers.files import FileServer
from tests.servers.gcs import GcsEnv
from tests.servers.hub import FakeHub
from tests.servers.s3 import S3Env

Capability = Literal["faults", "list", "write", "mutable", "conditional", "digests"]


@dataclass(frozen=True)
class Network:
    """What a backend served over HTTP by a test server gives the tests."""

    faults: Faults
    log: RequestLog
    data: Callable[[str], str]
    """Glob of the URL paths of the requests that carry the bytes of the object at a remote path."""
    listing: str
    """Glob of the URL paths of listing requests ("" without the `list` capability)."""
    resume_slack: int = 0
    """Received bytes a cut may lose: the resume may start this much before the byte reached."""


class Backend(Protocol):
    """One remote backend under test, built by `fixture` from the pytest fixtures it needs."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]

    @classmethod
    def fixture(cls, request: pytest.FixtureRequest) -> Backend:
        """A fresh, empty store for one test."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Credentials the remote uses, which no message may contain."""

    @property
    def network(self) -> Network | None:
        """The server's faults and log (None without the `faults` capability)."""

    def put(self, path: str, data: bytes) -> None:
        """Store `data` at `path` (relative to the remote's base), before the remote is opened."""

    def replace(self, path: str, data: bytes) -> None:
        """Store other bytes under `path`: to the store, another object than the one there."""

    def open(self, policy: RetryPolicy | None = None) -> Remote:
        """The remote under test (retry policy from the environment unless given)."""


def _bump_mtime(path: Path) -> None:
    """Move the file's modification time on by a second: a replacement is told apart even within
    one tick of the kernel's coarse clock."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


class FileBackend:
    """A local directory (`file://`). Replacing rewrites the file in place (same inode)."""

    name: ClassVar[str] = "file"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"list", "write", "mutable"})

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def fixture(cls, request: pytest.FixtureRequest) -> FileBackend:
        return cls(request.getfixturevalue("tmp_path") / "remote")

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()

    @property
    def network(self) -> Network | None:
        return None

    def put(self, path: str, data: bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def replace(self, path: str, data: bytes) -> None:
        with open(self.root / path, "r+b") as fh:
            fh.write(data)
            fh.truncate()
        _bump_mtime(self.root / path)

    def open(self, policy: RetryPolicy | None = None) -> Remote:
        return FileRemote(self.root)


class HttpBackend:
    """A Range-capable static HTTP server, read with Basic auth from the URL's userinfo. Replacing
    renames a new file into place (new ETag and Last-Modified)."""

    name: ClassVar[str] = "http"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"faults", "mutable", "conditional"})
    PASSWORD = "s3cr3t-basic-pw"

    def __init__(self, server: FileServer) -> None:
        self.server = server

    @classmethod
    def fixture(cls, request: pytest.FixtureRequest) -> HttpBackend:
        return cls(request.getfixturevalue("http_server"))

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.PASSWORD,)

    @property
    def network(self) -> Network:
        return Network(self.server.faults, self.server.log, lambda path: f"/{path}", "")

    def put(self, path: str, data: bytes) -> None:
        self.server.put(path, data)

    def replace(self, path: str, data: bytes) -> None:
        target = self.server.root / path
        fresh = target.with_name(f".{target.name}.new")
        fresh.write_bytes(data)
        os.replace(fresh, target)
        _bump_mtime(target)

    def open(self, policy: RetryPolicy | None = None) -> Remote:
        return HttpRemote(f"http://reader:{self.PASSWORD}@127.0.0.1:{self.server.port}", policy)


class S3Backend:
    """A bucket on moto's S3 server behind the fault proxy, read under a prefix."""

    name: ClassVar[str] = "s3"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {"faults", "list", "write", "mutable", "conditional", "digests"}
    )
    PREFIX = "mirror"

    def __init__(self, env: S3Env) -> None:
        self.env = env

    @classmethod
    def fixture(cls, request: pytest.FixtureRequest) -> S3Backend:
        return cls(request.getfixturevalue("s3"))

    @property
    def secrets(self) -> tuple[str, ...]:
        return ("testing-secret",)  # AWS_SECRET_ACCESS_KEY of the `s3` fixture

    @property
    def network(self) -> Network:
        base = f"/{self.env.bucket}/{self.PREFIX}"
        log, faults = self.env.server.log, self.env.server.faults
        return Network(faults, log, lambda path: f"{base}/{path}", f"/{self.env.bucket}", 256 << 10)

    def put(self, path: str, data: bytes) -> None:
        self.env.put(f"{self.PREFIX}/{path}", data)

    def replace(self, path: str, data: bytes) -> None:
        self.env.put(f"{self.PREFIX}/{path}", data)

    def open(self, policy: RetryPolicy | None = None) -> Remote:
        return S3Remote(self.env.bucket, self.PREFIX, endpoint=self.env.endpoint, policy=policy)


class HfBackend:
    """A dataset repo on the fake Hub, read under a prefix with a token. Each put or replacement is a
    commit on `main`; an open remote reads the commit it pinned first. LFS files (by suffix) are
    served from the fake CDN the resolve URL redirects to."""

    name: ClassVar[str] = "hf"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"faults", "list", "write", "digests"})
    REPO = "org/conformance"
    PREFIX = "mirror"
    TOKEN = "hf_ConformanceToken000000000000000"

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub

    @classmethod
    def fixture(cls, request: pytest.FixtureRequest) -> HfBackend:
        return cls(request.getfixturevalue("hub"))

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.TOKEN,)

    @property
    def network(self) -> Network:
        listing = f"/api/datasets/{self.REPO}/tree/*"
        return Network(self.hub.faults, self.hub.log, self._data, listing)

    def _data(self, path: str) -> str:
        if self.hub.is_lfs(path, 0):
            return "/cdn/*"
        return f"/datasets/{self.REPO}/resolve/*/{self.PREFIX}/{path}"

    def put(self, path: str, data: bytes) -> None:
        self.hub.commit(self.REPO, {f"{self.PREFIX}/{path}": data})

    def replace(self, path: str, data: bytes) -> None:
        self.put(path, data)

    def open(self, policy: RetryPolicy | None = None) -> Remote:
        return HfRemote(
            self.REPO, prefix=self.PREFIX, endpoint=self.hub.endpoint, token=self.TOKEN, policy=policy
        )


class GcsBackend:
    """A bucket on fake-gcs-server behind the fault proxy, read under a prefix, no credentials (an
    emulator). Pinned by generation (`ifGenerationMatch` in the URL, checked against every answer's
    `x-goog-generation`), so not `conditional` in the suite's If-Match sense."""

    name: ClassVar[str] = "gcs"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {"faults", "list", "write", "mutable", "digests"}
    )
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
    """A container on Azurite behind the fault proxy, read under a prefix with the account key (in
    AZURE_STORAGE_KEY, set by the `azure` fixture)."""

    name: ClassVar[str] = "azure"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
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


BACKENDS: tuple[type[Backend], ...] = (
    FileBackend,
    HttpBackend,
    S3Backend,
    HfBackend,
    GcsBackend,
    AzureBackend,
)
