"""The one small interface every remote implements, and its errors.

Implementations (s3, hf, http, file) own connection reuse, timeouts, retries with jittered backoff on
transient errors and resume of interrupted bodies (HTTP Range), so a consumer of `stream()` sees one
continuous byte stream or a `RemoteError`. Messages never contain credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dscache.errors import DscacheError

CHUNK = 1 << 20


class RemoteError(DscacheError):
    """A remote operation failed for good (after retries); the message is safe to show."""


class NotFoundError(RemoteError):
    """The path does not exist on the remote."""


@dataclass(frozen=True)
class RemoteFile:
    """A file on the remote, relative to the remote's base, with what the remote says about it."""

    path: str
    size: int
    sha256: str | None = None  # e.g. HF LFS oid
    md5: str | None = None  # e.g. S3 ETag of a single-part upload
    executable: bool = False  # an execute bit is set (file:// only; S3, HF and HTTP have no modes)


class Remote(Protocol):
    """Read (and for producers, write) files under one base location."""

    @property
    def url(self) -> str:
        """Display URL, safe to log (no credentials)."""

    def resolve_revision(self) -> str | None:
        """Pin the remote to an immutable revision (HF: branch/tag -> commit) and return it, or None."""

    def read_bytes(self, path: str) -> bytes:
        """Whole small file (manifests, indexes). Raises NotFoundError."""

    def stream(self, path: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Chunks of `path` from `offset` (`length` bytes, or to the end), resuming transparently."""

    def list_files(self, prefix: str) -> list[RemoteFile]:
        """Every file under `prefix/` (recursive), paths relative to the remote base."""

    def put_file(self, path: str, local: Path) -> None:
        """Upload `local` to `path` (producer side). Raises RemoteError if read-only."""
