"""The one small interface every remote implements, and its errors.

Implementations (s3, gcs, azure, hf, http, file) own connection reuse, timeouts, retries with
jittered backoff on transient errors and resume of interrupted bodies (HTTP Range), so a consumer of
`stream()` sees one continuous byte stream or a `RemoteError`. Messages never contain credentials.

Every download is pinned to one object (`Pin`): what identifies it (`Identity`: ETag, version id,
Last-Modified, size) is taken from a listing, from a partial file's record, or from the first
response, and every later request is conditional on it (If-Match / If-Unmodified-Since) and checked
against it. A remote object replaced mid-download raises `ObjectChangedError` instead of handing out
bytes of two objects as one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol

from dscache.errors import DscacheError, InvalidInputError

CHUNK = 1 << 20


class RemoteError(DscacheError):
    """A remote operation failed for good (after retries); the message is safe to show."""


class RemoteSettingError(RemoteError, InvalidInputError):
    """A remote's setting from the environment cannot be used (exit code 2); the message names it."""


class NotFoundError(RemoteError):
    """The path does not exist on the remote."""


class ObjectChangedError(RemoteError):
    """The remote object is provably not the one the download is pinned to (a 412 answer, or another
    ETag, version, modification time or size): bytes already received must not be continued."""


class UnpinnedResumeError(ObjectChangedError):
    """A download was cut and the remote sent nothing (no ETag, no Last-Modified) that could prove a
    resumed request continues the same object: the download has to start over."""


_VALIDATORS = ("etag", "version_id", "last_modified", "content_id")


@dataclass(frozen=True)
class Identity:
    """What tells one remote object from another stored under the same name. Every field is optional:
    two identities are compared on the fields both know."""

    size: int | None = None
    """Length of the whole object in bytes (not of a range inside it)."""
    etag: str | None = None
    """A strong validator as the remote sends it (HTTP ETag with its quotes, S3 ETag)."""
    version_id: str | None = None
    """S3 object version (versioned buckets)."""
    last_modified: int | None = None
    """Modification time in whole seconds since the epoch (HTTP dates have no finer resolution)."""
    content_id: str | None = None
    """A name for the content that responses do not repeat (HF: the git blob or LFS sha256 of the
    file at the pinned commit): compared between listings and records only."""

    @property
    def validated(self) -> bool:
        """Whether anything besides the size identifies the object."""
        return any(getattr(self, name) is not None for name in _VALIDATORS)

    def conflict(self, other: Identity) -> str | None:
        """The first field both identities know and disagree on, as `name a -> b`; None if none.

        Modification times count only where an ETag does not settle it (as If-Match outranks
        If-Unmodified-Since): listings, answers and CDN edges may state the same object's time
        differently."""
        both_etags = self.etag is not None and other.etag is not None
        for name in ("etag", "version_id", "last_modified", "content_id", "size"):
            if name == "last_modified" and both_etags:
                continue
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None and mine != theirs:
                return f"{name.replace('_', ' ')} {mine} -> {theirs}"
        return None

    def same_object(self, other: Identity) -> bool:
        """Provably the same object: nothing disagrees and at least one validator is known to both."""
        shared = any(getattr(self, n) is not None and getattr(other, n) is not None for n in _VALIDATORS)
        return shared and self.conflict(other) is None

    def merged(self, other: Identity) -> Identity:
        """This identity with the fields it lacks taken from `other`."""
        return replace(
            self, **{f.name: getattr(other, f.name) for f in fields(self) if getattr(self, f.name) is None}
        )

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Identity:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Pin:
    """One download's object: the identity every response must match, and the digests the remote
    vouches for. Filled in by the remote as responses arrive (the first one completes the identity);
    a transfer keeps it next to a partial file, so that a later run resumes only the same object.
    """

    identity: Identity = field(default_factory=Identity)
    checksums: dict[str, str] = field(default_factory=dict)
    """Algorithm (md5, sha1, sha256, crc32, crc32c, crc64nvme) -> lower-case hex digest of the WHOLE
    object, as the remote states it (a plain S3 ETag, S3 additional checksums, GCS x-goog-hash)."""
    hints: dict[str, str] = field(default_factory=dict)
    """Digests that may not be digests at all (a 32-hex ETag from a store that does not say whether
    it is an MD5): a mismatch alone does not prove the bytes wrong."""
    whole_bodies: bool = False
    """The server answered a request for less than the whole object with the whole object (HTTP 200):
    it ignores Range, so every further part would be a full body too."""
    whole_stop: int | None = None
    """Where a stream reads on to (an absolute offset past its requested length) when its first answer
    is the whole object (`whole_bodies`), instead of dropping the rest: set by a caller that would
    ask for those bytes next anyway (`dscache.install.parts`), so that a server ignoring Range sends
    the object once. Not kept with a partial file's record."""
    want_checksums: bool = False
    """Ask for the object's stored checksums before the first byte when the first answer vouches for
    no digest (S3: one HEAD in checksum mode); set by a caller that downloads the whole object and
    has no digest of its own."""

    def check(self, got: Identity, what: str) -> None:
        """Raise ObjectChangedError if `got` (a response's identity) contradicts the pin; else learn
        from it what the pin did not know yet."""
        diff = self.identity.conflict(got)
        if diff is not None:
            raise ObjectChangedError(
                f"{what}: the remote object is not the one being downloaded ({diff}); it changed since "
                "it was listed or first read, or a manifest states another one"
            )
        self.identity = self.identity.merged(got)

    def to_json(self) -> dict[str, Any]:
        return {"identity": self.identity.to_json(), "checksums": self.checksums, "hints": self.hints}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pin:
        return cls(
            Identity.from_json(dict(data.get("identity") or {})),
            {str(k): str(v) for k, v in dict(data.get("checksums") or {}).items()},
            {str(k): str(v) for k, v in dict(data.get("hints") or {}).items()},
        )


@dataclass(frozen=True)
class RemoteFile:
    """A file on the remote, relative to the remote's base, with what the remote says about it."""

    path: str
    size: int
    sha256: str | None = None  # e.g. HF LFS oid
    md5: str | None = None  # an ETag that looks like an MD5 (S3); only the download shows if it is one
    identity: Identity = field(default_factory=Identity)
    checksums: tuple[str, ...] = ()
    """Algorithms of the stored whole-object checksums the listing announces (S3 ChecksumAlgorithm)."""
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

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        """Chunks of `path` from `offset` (`length` bytes, or to the end), resuming transparently.

        Every request is held to `pin` (a fresh one if None), which the responses complete. Raises
        ObjectChangedError when the object is not the pinned one, NotFoundError, RemoteError.
        """

    def list_files(self, prefix: str) -> list[RemoteFile]:
        """Every file under `prefix/` (recursive), paths relative to the remote base."""

    def put_file(self, path: str, local: Path) -> None:
        """Upload `local` to `path` (producer side). Raises RemoteError if read-only."""
