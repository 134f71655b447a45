"""Packing a directory tree into reproducible `.tar.zst` archives (the producer's core).

Archives are reproducible (sorted members, fixed mtime/uid/gid/owner names, normalised modes, zstd in
multi-threaded mode whose output does not depend on the thread count), so packing the same tree again
gives byte-identical archives. Trees that no consumer could extract safely are refused up front.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import zstandard

from dscache.errors import DscacheError, InvalidInputError
from dscache.layouts.manifest import DSCACHE_MANIFEST, ArchiveInfo
from dscache.layouts.molmospaces import (
    MOLMO_COMBINED_TRIES,
    MOLMO_LOCAL_MANIFEST,
    MOLMO_REMOTE_MANIFEST,
    molmo_size_mb,
)
from dscache.store.filetypes import file_type
from dscache.store.members import CONTROL_RULE, control_character
from dscache.store.paths import COMPLETE_RECORD, INVENTORY, ITEMS

ARCHIVE_SUFFIX = ".tar.zst"
DEFAULT_ARCHIVE_SIZE = 64 << 20
DEFAULT_LEVEL = 3
TAR_MTIME = 0  # every member's mtime: reproducible archives
BLOCK = 512
_COPY_CHUNK = 1 << 20

# Files an installed cache version carries that are not part of the dataset: publishing an installed
# version (mirroring it elsewhere) must not ship the old installer's bookkeeping as data.
_BOOKKEEPING = frozenset(
    {
        COMPLETE_RECORD,
        INVENTORY,
        ITEMS,
        MOLMO_REMOTE_MANIFEST,
        MOLMO_COMBINED_TRIES,
        MOLMO_LOCAL_MANIFEST,
        DSCACHE_MANIFEST,
    }
)
_MOLMO_FLAG = re.compile(r"^\..+_complete_(extract|links)$")


class PublishError(DscacheError):
    """Publishing failed (remote, disk, or a conflict); the message is safe to show."""


class BadInputError(PublishError, InvalidInputError):
    """The input cannot be published as is (usage/validation error); the message names the culprit."""


# ------------------------------------------------------------------------------------------ the tree


@dataclass(frozen=True)
class TreeEntry:
    """One member-to-be: a regular file, a symlink, or an empty directory (relative POSIX path)."""

    path: str
    kind: Literal["file", "symlink", "dir"]
    size: int = 0
    executable: bool = False
    target: str = ""  # symlink target, as written in the link

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))


def is_bookkeeping(rel: str) -> bool:
    """True for top-level files an installer writes into a version (never dataset content)."""
    return "/" not in rel and (rel in _BOOKKEEPING or _MOLMO_FLAG.match(rel) is not None)


def symlink_escapes(rel: str, target: str) -> bool:
    """True if the link at `rel` (relative to the tree root) points outside the tree, judged lexically."""
    if not target or target.startswith("/"):
        return True
    depth = len(rel.split("/")) - 1  # directories above the link, inside the tree
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def scan_tree(root: Path) -> tuple[list[TreeEntry], list[str]]:
    """Walk `root` without following links: (entries in walk order, skipped bookkeeping files).

    Rejects what no consumer could safely extract: symlinks leaving the tree (absolute targets,
    `..` past the root, or resolving outside it), devices, fifos, sockets, names holding control
    characters. Names are bytes, as on the
    consumer side: any name the filesystem holds is archived as is, one that is not UTF-8 (a surrogate
    escape here, as `os.fsdecode` gives it) in a pax `hdrcharset=BINARY` record, and `install` writes
    it back byte for byte.
    """
    if not root.is_dir():
        raise BadInputError(f"{root}: not a directory")
    real_root = root.resolve()
    entries: list[TreeEntry] = []
    skipped: list[str] = []

    def walk(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as it:
            children = sorted(it, key=lambda e: e.name)
        if not children and prefix:
            entries.append(TreeEntry(prefix.rstrip("/"), "dir"))
        for child in children:
            rel = prefix + child.name
            _check_name(rel, root)
            st = child.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(child.path)
                if symlink_escapes(rel, target) or not _resolves_inside(Path(child.path), real_root):
                    raise BadInputError(f"{root / rel}: symlink to {target!r} points outside the tree")
                entries.append(TreeEntry(rel, "symlink", target=target))
            elif stat.S_ISDIR(st.st_mode):
                walk(Path(child.path), rel + "/")
            elif stat.S_ISREG(st.st_mode):
                if not prefix and is_bookkeeping(rel):
                    skipped.append(rel)
                    continue
                entries.append(TreeEntry(rel, "file", st.st_size, bool(st.st_mode & 0o111)))
            else:
                raise BadInputError(f"{root / rel}: {file_type(st.st_mode)} cannot be published")

    walk(root, "")
    if all(e.kind == "dir" for e in entries):
        raise BadInputError(f"{root}: nothing to publish (no files)")
    return entries, skipped


def _resolves_inside(link: Path, real_root: Path) -> bool:
    resolved = Path(os.path.realpath(link))
    return resolved == real_root or resolved.is_relative_to(real_root)


def _check_name(rel: str, root: Path) -> None:
    """Names that are not UTF-8 are archived as bytes (see `scan_tree`); control characters are
    refused, as `install` refuses them (`dscache.store.members.CONTROL_RULE`)."""
    control = control_character(rel)
    if control is not None:
        raise BadInputError(
            f"{root}: file name {rel!r} holds the control character {control}: {CONTROL_RULE}"
        )


# -------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class ArchivePlan:
    """The members of one archive, in order."""

    name: str
    entries: tuple[TreeEntry, ...]

    @property
    def leaf_paths(self) -> list[str]:
        """Files and links (what molmospaces' trie lists; empty directories are not leaves there)."""
        return [e.path for e in self.entries if e.kind != "dir"]

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries)


def tar_size(entry: TreeEntry) -> int:
    """Approximate bytes `entry` takes in an uncompressed tar (header, PAX name record, data)."""
    extra = 3 * BLOCK if len(os.fsencode(entry.path)) > 100 or not entry.path.isascii() else 0
    return BLOCK + extra + -(-entry.size // BLOCK) * BLOCK


def plan_archives(entries: Sequence[TreeEntry], archive_size: int) -> list[ArchivePlan]:
    """Group entries into archives of about `archive_size` uncompressed tar bytes.

    A subtree that fits is never split (like molmospaces packages, one object per archive where
    possible); bigger subtrees are split at their children, recursively; consecutive units are packed
    greedily in walk order, so an archive holds neighbouring subtrees. A file larger than
    `archive_size` gets an archive of its own.
    """
    units = _units(list(entries), 0, archive_size)
    groups: list[list[TreeEntry]] = []
    current: list[TreeEntry] = []
    current_size = 0
    for unit in units:
        size = sum(tar_size(e) for e in unit)
        if current and current_size + size > archive_size:
            groups.append(current)
            current, current_size = [], 0
        current.extend(unit)
        current_size += size
    if current:
        groups.append(current)
    width = max(4, len(str(len(groups) - 1)))
    return [
        ArchivePlan(f"{_slug(g[0].parts[0])}_{i:0{width}d}{ARCHIVE_SUFFIX}", tuple(g))
        for i, g in enumerate(groups)
    ]


def _units(entries: list[TreeEntry], depth: int, archive_size: int) -> Iterator[list[TreeEntry]]:
    """Split `entries` (all under one directory at `depth`) into whole-subtree units that fit."""
    i = 0
    while i < len(entries):
        head = entries[i].parts[depth]
        j = i
        while j < len(entries) and entries[j].parts[depth] == head:
            j += 1
        group = entries[i:j]
        is_dir = len(group) > 1 or len(group[0].parts) > depth + 1
        if is_dir and sum(tar_size(e) for e in group) > archive_size:
            yield from _units(group, depth + 1, archive_size)
        else:
            yield group
        i = j


def _slug(component: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "_", component).strip("_-")[:40] or "files"


def compact_trie(paths: Iterable[str]) -> dict[str, Any]:
    """molmospaces' `CompactPathTrie.from_paths(paths).to_dict()`, without depending on it."""
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for part in path.strip("/").split("/"):
            node = node.setdefault(part, {})
    return _compact(root)


def _compact(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in node.items():
        key, child = name, _compact(value)
        while len(child) == 1:
            ((child_key, child_value),) = child.items()
            if not child_value:
                break
            key, child = f"{key}/{child_key}", child_value
        out[key] = child
    return out


# -------------------------------------------------------------------------------------- archives


@dataclass(frozen=True)
class BuiltArchive:
    """An archive written to local disk, with what the manifests say about it."""

    name: str
    local: Path
    size: int
    sha256: str
    files: int  # files and links (every non-directory member)
    bytes: int  # extracted bytes of regular files
    leaf_paths: tuple[str, ...]

    def info(self) -> ArchiveInfo:
        return ArchiveInfo(
            name=self.name,
            size=self.size,
            size_mb=molmo_size_mb(self.size),
            sha256=self.sha256,
            files=self.files,
            bytes=self.bytes,
        )


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through to `raw`."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def tar_info(entry: TreeEntry) -> tarfile.TarInfo:
    """The reproducible header of `entry`: only the path, type, size, link and an exec bit vary."""
    info = tarfile.TarInfo(entry.path)
    info.mtime = TAR_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "file":
        info.type, info.size = tarfile.REGTYPE, entry.size
        info.mode = 0o755 if entry.executable else 0o644
    elif entry.kind == "symlink":
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.target, 0o777
    else:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def write_archive(
    root: Path, plan: ArchivePlan, out: Path, *, level: int = DEFAULT_LEVEL, threads: int = -1
) -> BuiltArchive:
    """Write `plan` as `.tar.zst` to `out`, hashing on the way. Fails if a file changed size meanwhile."""
    compressor = zstandard.ZstdCompressor(
        level=level, threads=threads if threads != 0 else 1, write_checksum=True
    )
    with open(out, "wb") as raw:
        hashing = _HashingWriter(raw)
        with (
            compressor.stream_writer(hashing, closefd=False) as zw,  # type: ignore[arg-type]
            tarfile.open(fileobj=zw, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for entry in plan.entries:
                info = tar_info(entry)
                if entry.kind != "file":
                    tar.addfile(info)
                    continue
                with open(root / entry.path, "rb") as fh:
                    if os.fstat(fh.fileno()).st_size != entry.size:
                        raise PublishError(f"{root / entry.path}: changed while publishing")
                    tar.addfile(info, fh)
        raw.flush()
        os.fsync(raw.fileno())
    return BuiltArchive(
        name=plan.name,
        local=out,
        size=hashing.size,
        sha256=hashing.sha.hexdigest(),
        files=len(plan.leaf_paths),
        bytes=plan.bytes,
        leaf_paths=tuple(plan.leaf_paths),
    )


def describe_archive(
    name: str, local: Path, leaf_paths: Sequence[str] = (), extracted_bytes: int = 0
) -> BuiltArchive:
    """A `BuiltArchive` for an archive made elsewhere (hashes `local`); for tests and re-publishing."""
    sha = hashlib.sha256()
    size = 0
    with open(local, "rb") as fh:
        while chunk := fh.read(_COPY_CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return BuiltArchive(
        name, local, size, sha.hexdigest(), len(leaf_paths), extracted_bytes, tuple(leaf_paths)
    )
