"""Digests of transferred bytes, and the judgement of them against what the remote published.

What counts: the size, the sha256 of a dscache manifest or an HF LFS pointer (the item's), and what
the remote vouched for while the object was read (`Pin.checksums`: an S3 ETag that is an MD5, S3
stored checksums, GCS hashes). A `Pin.hint` (an ETag that may or may not be an MD5) cannot fail an
object on its own: it only asks for a second download, and two downloads that agree byte for byte
show the ETag is no digest of them. crc32c (GCS x-goog-hash, the only digest of a composite GCS
object; S3 ChecksumCRC32C) is computed with google-crc32c (C, hardware CRC instructions), imported
when first asked for. crc64nvme is left out: such objects are verified by size, like every object
that has no digest at all.

Every digest covers the whole object, also when a download resumes a partial file: the transfer
hashes the bytes already on disk (read back from the partial file) before the streamed rest
(`Hashes.update_from`), so a prefix that went bad on disk fails the check like a bad body does.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from dscache.remotes.base import Pin

DIGEST_ATTEMPTS = 2
"""Downloads of an item whose bytes are proven wrong (a retry may get them right)."""
DOUBT_ATTEMPTS = 3
"""Downloads of an item only a hint disagrees with, to find two that agree."""


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class _Crc32:
    """zlib's CRC-32, as S3 states ChecksumCRC32 (big-endian bytes, here as hex)."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes, /) -> None:
        self.value = zlib.crc32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


class _Crc32c:
    """CRC-32C (Castagnoli), as GCS and S3 state it (big-endian bytes, here as hex)."""

    def __init__(self) -> None:
        import google_crc32c

        self._extend = google_crc32c.extend
        self.value = 0

    def update(self, data: bytes, /) -> None:
        self.value = int(self._extend(self.value, data))

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


def _hasher(algorithm: str) -> _Hasher | None:
    if algorithm in ("md5", "sha1", "sha256"):
        return hashlib.new(algorithm, usedforsecurity=False)
    if algorithm == "crc32":
        return _Crc32()
    if algorithm == "crc32c":
        return _Crc32c()
    return None


class Hashes:
    """sha256 plus every other computable algorithm asked for, over one stream of bytes."""

    def __init__(self, algorithms: Iterable[str] = ()) -> None:
        self._hashers: dict[str, _Hasher] = {}
        for algorithm in {"sha256", *algorithms}:
            hasher = _hasher(algorithm)
            if hasher is not None:
                self._hashers[algorithm] = hasher

    def update(self, data: bytes) -> None:
        for hasher in self._hashers.values():
            hasher.update(data)

    def update_from(self, path: Path, size: int) -> None:
        """Add the first `size` bytes of the file at `path` (a partial copy being resumed)."""
        with open(path, "rb") as fh:
            left = size
            while left > 0 and (block := fh.read(min(1 << 20, left))):
                self.update(block)
                left -= len(block)

    def hexdigests(self) -> dict[str, str]:
        return {name: hasher.hexdigest() for name, hasher in self._hashers.items()}


def wanted(pin: Pin, sha256: str | None = None) -> set[str]:
    """Pure: algorithms worth computing besides sha256 (always computed: every item records it) for
    what `pin` says about the object and the item's published `sha256` (a manifest's, an LFS
    pointer's). None when a sha256 is published or vouched for: it alone proves the bytes, so an
    ETag's md5 or a CRC would hash every byte again for nothing (md5 runs at ~670 MB/s against
    sha256's ~1,600 MB/s on the benchmark machine, SHA extensions). Such an item records no md5,
    so a later listing that states only an md5 does not share it (see `store.shares`)."""
    if sha256 is not None or "sha256" in pin.checksums:
        return set()
    return set(pin.checksums) | set(pin.hints)


@dataclass(frozen=True)
class Verdict:
    """`problem`: the bytes are proven wrong; `doubt`: only a hint disagrees; neither: they pass."""

    problem: str | None = None
    doubt: str | None = None


_STRENGTH = ("sha256", "sha1", "md5")


def _strongest_first(entry: tuple[str, str]) -> tuple[int, str]:
    """Sort key: cryptographic digests before CRCs, so a mismatch names the most telling one."""
    algorithm = entry[0]
    return (_STRENGTH.index(algorithm) if algorithm in _STRENGTH else len(_STRENGTH), algorithm)


def judge(
    size: int,
    got: dict[str, str],
    *,
    expected_size: int | None,
    sha256: str | None,
    pin: Pin | None,
) -> Verdict:
    """Pure: the verdict on `size` bytes with digests `got`, against the item's size and sha256 and,
    if given, what the remote vouched for the whole object (`pin`; None when digests are off or the
    bytes are a range of a larger object)."""
    if expected_size is not None and size != expected_size:
        return Verdict(problem=f"got {size} bytes, the remote lists {expected_size}")
    if sha256 is not None and got["sha256"] != sha256.lower():
        return Verdict(problem=f"sha256 {got['sha256']} does not match the published {sha256}")
    if pin is None:
        return Verdict()
    proven = sha256 is not None
    for algorithm, want in sorted(pin.checksums.items(), key=_strongest_first):
        if algorithm in got:
            if got[algorithm] != want:
                source = "ETag" if algorithm == "md5" else "stored checksum"
                return Verdict(
                    problem=f"{algorithm} {got[algorithm]} does not match the remote {source} {want}"
                )
            proven = True
    if not proven:
        for algorithm, want in sorted(pin.hints.items()):
            if algorithm in got and got[algorithm] != want:
                return Verdict(
                    doubt=f"{algorithm} {got[algorithm]} differs from the remote ETag {want} "
                    "(which may not be an MD5)"
                )
    return Verdict()


Step = Literal["accept", "retry", "fail"]


def next_step(verdict: Verdict, sha256: str, doubted: list[str], attempt: int) -> Step:
    """Pure: what to do after download number `attempt` (1-based) got `verdict`. `doubted` holds the
    sha256 of earlier downloads only a hint disagreed with, and is extended here."""
    if verdict.problem is not None:
        return "retry" if attempt < DIGEST_ATTEMPTS else "fail"
    if verdict.doubt is not None:
        if sha256 in doubted:
            return "accept"  # two downloads agree: the ETag is no digest of these bytes
        doubted.append(sha256)
        return "retry" if attempt < DOUBT_ATTEMPTS else "fail"
    return "accept"
