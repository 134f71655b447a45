"""What installing one version means: the items to transfer and the metadata to keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dscache.api.names import VersionKey
from dscache.errors import DscacheError
from dscache.remotes.base import Identity

NAME_MAX = 255
"""Longest file name component, in bytes (Linux, and the POSIX file systems a cache lives on)."""
MEMBER_WORK = 128 << 10
"""What extracting one archive member costs, as bytes of download taking as long (`WorkItem.work`).
Creating a file dominates it: extracting an archive of 2,000 small members (12.8 MB) took 1.2 s of
a worker on the benchmark machine (ext4; GNU tar 0.55 s of system time for the same archive), one of
a single 88 MB member 0.17 s, so a member costs ~0.5 ms, as long as ~250 KB take to arrive at a
worker's 500 MB/s share of a node's link; more on NFS, where each create is a round trip."""


class LayoutError(DscacheError):
    """The remote does not hold the version in the expected layout; the message says what is missing."""


@dataclass(frozen=True)
class WorkItem:
    """One archive to stream-extract, or one plain file to copy."""

    kind: Literal["archive", "file"]
    name: str  # archive name, or file path relative to the version
    remote_path: str  # path on the remote (relative to its base)
    offset: int = 0  # byte range inside `remote_path` (HF tar shards)
    length: int | None = None
    size: int | None = None  # exact transferred size, when the remote says
    approx_size: int = 0  # for progress and space checks when `size` is unknown
    sha256: str | None = None
    identity: Identity = field(default_factory=Identity)
    """What the listing says identifies the remote object (files layout), so a partial copy is resumed
    only from the same object."""
    checksums: tuple[str, ...] = ()
    """Algorithms of the checksums the remote stores for the object (S3), fetched before the copy."""
    verify: bool = True
    """Check digests (the manifest's, the remote's); sizes are checked either way."""
    executable: bool = False  # a plain file the remote marks executable (file:// remotes)
    members: int | None = None
    """Files and links an archive extracts to, when the remote's dscache manifest says."""
    stated: tuple[tuple[str, str], ...] = ()
    """(algorithm, lower-case hex) digests the remote states for the whole item before any byte is read
    (a manifest's or an LFS pointer's sha256, a listing's md5): what finds the same bytes in a version
    already published (`install/share.py`). Kept when `verify` is off."""

    @property
    def expected_bytes(self) -> int:
        return self.size if self.size is not None else self.approx_size

    @property
    def work(self) -> int:
        """How long the item keeps a worker busy, in bytes of download taking as long: its bytes, plus
        `MEMBER_WORK` per archive member the manifest counts. Items are started in decreasing order of
        it (and team shares balanced by it), so an archive of many small files, whose extraction
        outlasts its download, is not the last to finish while the link idles."""
        return self.expected_bytes + (self.members or 0) * MEMBER_WORK


@dataclass
class VersionPlan:
    """A version to install: transfer `items`, keep `metadata` files (name -> content) in the version."""

    key: VersionKey
    layout: str
    items: list[WorkItem]
    metadata: dict[str, bytes] = field(default_factory=dict)
    extracted_bytes: int | None = None  # known from dscache-manifest.json
    extracted_files: int | None = None  # known from dscache-manifest.json

    @property
    def download_bytes(self) -> int:
        return sum(i.expected_bytes for i in self.items)

    @property
    def space_needed(self) -> int:
        """Lower bound of the bytes the version takes once installed."""
        return max(self.extracted_bytes or 0, self.download_bytes)
