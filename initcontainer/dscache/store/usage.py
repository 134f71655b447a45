"""Bytes on the volume by inode: what each version stores, what it shares with other versions, and
what a deletion frees.

Versions that share bytes hold hard links to one inode (`install/share.py`), so a version's apparent
size (the sum of its files) says neither what it takes on disk alone nor what deleting it frees. Here
every regular file is counted once per inode: `stored` is the bytes of the distinct inodes below a
version, `shared` those of its inodes that another version also links, and a deletion frees the
bytes of the inodes whose every link (`st_nlink`) it removes. Sizes are `st_size` (apparent bytes of
the files, not allocated blocks). Costs one `lstat` per file, as `verify` does.
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
class FileLinks:
    """One inode as seen below some trees: its size, its link count, and the links found there."""

    size: int
    nlink: int
    found: int


@dataclass(frozen=True)
class Usage:
    """What one version takes: `stored` bytes (distinct inodes), of which `shared` are linked from
    another version too."""

    stored: int
    shared: int


def scan_inodes(roots: Iterable[Path]) -> dict[Inode, FileLinks]:
    """Every regular file below `roots` (symlinks not followed; a missing root is empty), by inode."""
    found: dict[Inode, FileLinks] = {}
    for _path, st in regular_files(roots, skip=(FileNotFoundError, NotADirectoryError)):
        key = (st.st_dev, st.st_ino)
        seen = found.get(key)
        found[key] = FileLinks(st.st_size, st.st_nlink, 1 + (seen.found if seen else 0))
    return found


def freeable(inodes: Mapping[Inode, FileLinks]) -> int:
    """Pure: bytes of the inodes whose every link is among those found."""
    return sum(f.size for f in inodes.values() if f.found >= f.nlink)


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
        )
        for key, inodes in scans.items()
    }


def delete_counted(path: Path) -> tuple[Leftover | None, int]:
    """`delete_tree(path)` and the bytes it freed: those of the inodes whose last link was below
    `path` and is gone (an inode still linked elsewhere, or left behind by a refusal, freed nothing).
    """
    last = {inode: f for inode, f in scan_inodes([path]).items() if f.found >= f.nlink}
    leftover = delete_tree(path)
    if leftover is not None:
        for inode in scan_inodes([path]):
            last.pop(inode, None)
    return leftover, sum(f.size for f in last.values())
