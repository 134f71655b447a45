"""Bytes on the volume by inode: what each version stores, what it shares with other versions, and
what a deletion frees.

Versions that share bytes hold hard links to one inode (`install/share.py`), so a version's apparent
size (the sum of its files) says neither what it takes on disk alone nor what deleting it frees. Here
every regular file is counted once per inode: `stored` is the bytes of the distinct inodes below a
version, `shared` those of its inodes that another version also links, and a deletion frees the
bytes of the inodes whose every link (`st_nlink`) it removes. Each figure comes twice: `content`, the
files' sizes (`st_size`), and `disk`, the blocks the file system allocated to them (`st_blocks` * 512,
what `du` counts): 8000 files of 10 bytes are 78 KiB of content and take 31 MiB of a file system of
4 KiB blocks. Costs one `lstat` per file, as `verify` does.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from dscache.store.deletion import Leftover, delete_tree
from dscache.store.fsops import regular_files

Inode = tuple[int, int]
"""(st_dev, st_ino)"""
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Amount:
    """Bytes of file `content` (sizes) and on `disk` (allocated blocks) of some files."""

    content: int = 0
    disk: int = 0

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.content + other.content, self.disk + other.disk)


@dataclass(frozen=True)
class FileLinks:
    """One inode as seen below some trees: its size, its allocated bytes (`st_blocks` * 512), its link
    count, and the links found there."""

    size: int
    nlink: int
    found: int
    disk: int = 0

    @property
    def amount(self) -> Amount:
        return Amount(self.size, self.disk)


@dataclass(frozen=True)
class Usage:
    """What one version takes: `stored` bytes of content (distinct inodes), of which `shared` are
    linked from another version too; `stored_disk`: the bytes its distinct inodes take on disk."""

    stored: int
    shared: int
    stored_disk: int = 0


def scan_inodes(roots: Iterable[Path]) -> dict[Inode, FileLinks]:
    """Every regular file below `roots` (symlinks not followed; a missing root is empty), by inode."""
    found: dict[Inode, FileLinks] = {}
    for _path, st in regular_files(roots, skip=(FileNotFoundError, NotADirectoryError)):
        key = (st.st_dev, st.st_ino)
        seen = found.get(key)
        found[key] = FileLinks(st.st_size, st.st_nlink, 1 + (seen.found if seen else 0), st.st_blocks * 512)
    return found


def freeable(inodes: Mapping[Inode, FileLinks]) -> Amount:
    """Pure: bytes (content and disk) of the inodes whose every link is among those found."""
    return sum((f.amount for f in inodes.values() if f.found >= f.nlink), Amount())


def versions_usage(roots: Mapping[K, Path]) -> dict[K, Usage]:
    """`Usage` of each version (key -> its directory), sharing judged among these versions."""
    scans = {key: scan_inodes([root]) for key, root in roots.items()}
    owners: dict[Inode, int] = {}
    for inodes in scans.values():
        for inode in inodes:
            owners[inode] = owners.get(inode, 0) + 1
    return {
        key: Usage(
            stored=sum(f.size for f in inodes.values()),
            shared=sum(f.size for inode, f in inodes.items() if owners[inode] > 1),
            stored_disk=sum(f.disk for f in inodes.values()),
        )
        for key, inodes in scans.items()
    }


def delete_counted(path: Path) -> tuple[Leftover | None, Amount]:
    """`delete_tree(path)` and the bytes it freed: those of the inodes whose last link was below
    `path` and is gone (an inode still linked elsewhere, or left behind by a refusal, freed nothing).
    """
    last = {inode: f for inode, f in scan_inodes([path]).items() if f.found >= f.nlink}
    leftover = delete_tree(path)
    if leftover is not None:
        for inode in scan_inodes([path]):
            last.pop(inode, None)
    return leftover, sum((f.amount for f in last.values()), Amount())
