"""What extracting an archive makes and why it refuses one: the result and error types of `extract.py`,
and its pure checks, without loading libarchive or zstandard.

Split from `extract.py` so that the installer's parent process, which plans, commits and reports but
never extracts, does not import the extractor's libraries before its first byte (35-40 ms on this
project's 2-core machines; `preload.py` loads them while the plan's requests are out).

Names are bytes decoded as UTF-8 with `surrogateescape` (`decode_name`; see `extract.py`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dscache.errors import DscacheError
from dscache.install.pathkinds import DIRECTORY, FILE, SYMLINK, PathKinds

DIR_MODE = 0o755  # made read-only when the version is published
_KINDS = {"file": FILE, "hardlink": FILE, "dir": DIRECTORY, "symlink": SYMLINK}


RejectCause = Literal["unsafe", "corrupt", "limit"]
"""Why an archive is rejected: a member dscache refuses to extract, bytes that are no valid `.tar.zst`,
or a zstd window above the bound (`DSCACHE_ZSTD_MAX_WINDOW`)."""


class ArchiveRejectedError(DscacheError):
    """An archive is unsafe or corrupt; the message names the archive and the member."""

    def __init__(
        self, archive: str, member: str | None, reason: str, *, cause: RejectCause = "unsafe"
    ) -> None:
        where = f"member {member!r} of {archive}" if member is not None else archive
        super().__init__(f"{where}: {reason}")
        self.archive = archive
        self.member = member
        self.reason = reason
        self.cause: RejectCause = cause

    def __reduce__(self) -> tuple[Any, ...]:
        # raised in worker processes: pickled with its keyword
        return (_rejected, (self.archive, self.member, self.reason, self.cause))


def _rejected(archive: str, member: str | None, reason: str, cause: RejectCause) -> ArchiveRejectedError:
    return ArchiveRejectedError(archive, member, reason, cause=cause)


@dataclass
class Extracted:
    """What one archive put on disk: regular files with sizes, symlinks with targets, directories, and
    the regular files installed executable, and the sha256 (hex) of each regular file's bytes."""

    files: dict[str, int] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    executable: list[str] = field(default_factory=list)
    sha256: dict[str, str] = field(default_factory=dict)
    """Path -> sha256 of the bytes extracted there (archives; empty for plain files, whose item
    record has the digest, and for archives extracted by a dscache that did not hash members). In
    JSON `fileSha256`: the markers and records that hold this beside it use `sha256` for the
    archive's own digest."""

    def to_json(self) -> dict[str, Any]:
        data = {"files": self.files, "links": self.links, "dirs": self.dirs, "executable": self.executable}
        return {**data, "fileSha256": self.sha256} if self.sha256 else data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Extracted:
        """Read `to_json` output back (markers of older versions have no `dirs`, `executable` or
        `sha256`)."""
        files, links = dict(data["files"]), dict(data["links"])
        dirs, executable = list(data.get("dirs", [])), list(data.get("executable", []))
        sums = {str(path): str(hex_) for path, hex_ in data.get("fileSha256", {}).items()}
        return cls(files, links, dirs, executable, sums)

    def unhashed(self) -> list[str]:
        """Pure: the regular files without a sha256 (all of them for an older dscache's archive)."""
        return [path for path in self.files if path not in self.sha256]

    @classmethod
    def single_file(cls, name: str, size: int, executable: bool) -> Extracted:
        """What copying one plain file (`files` layout) put on disk."""
        return cls({name: size}, executable=[name] if executable else [])

    def kinds(self) -> Iterator[tuple[str, str]]:
        """Every explicit path with its kind (`pathkinds`), directories first."""
        yield from ((path, DIRECTORY) for path in self.dirs)
        yield from ((path, FILE) for path in self.files)
        yield from ((path, SYMLINK) for path in self.links)


def place_member(kinds: PathKinds, name: str, kind: str, archive: str) -> str | None:
    """Why `name` clashes with what this archive already made of its path or its parents (None if it
    does not; then it is recorded). Same-kind repeats are fine: the later member wins."""
    conflict = kinds.place(name, _KINDS[kind], archive)
    return None if conflict is None else conflict.describe()


def hardlink_target_problem(kinds: PathKinds, name: str, target: str) -> str | None:
    """Why a hardlink `name` may not point at `target` (None if it may): only at a regular file
    extracted earlier from the same archive, other than itself."""
    placed = kinds.get(target)
    if target == name:
        return "hardlink to itself"
    if placed is None:
        return f"hardlink target {target!r} is not an earlier member of this archive"
    if placed.kind != FILE:
        return f"hardlink to a {placed.kind} ({target!r})"
    return None


def links_escaping(root: Path, links: Iterable[str]) -> list[str]:
    """Symlinks below `root` whose fully resolved target lies outside `root` (chains included)."""
    real_root = os.path.realpath(root)
    bad = []
    for rel in links:
        target = os.path.realpath(os.path.join(root, rel))
        if target != real_root and not target.startswith(real_root + os.sep):
            bad.append(rel)
    return bad


def decode_name(raw: bytes) -> str:
    """A member name's bytes as dscache's str (UTF-8, undecodable bytes as lone surrogates)."""
    return raw.decode("utf-8", "surrogateescape")


def encode_name(name: str) -> bytes:
    """Inverse of `decode_name`."""
    return name.encode("utf-8", "surrogateescape")
