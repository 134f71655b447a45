"""The room versions take on the cache's file system, counted as it allocates it, and the room it has.

A file takes whole blocks (`st_blocks`, what `du` counts), not its size: 8000 files of 10 bytes hold
78 KiB of content and take 31 MiB on a file system of 4 KiB blocks (ext4, tmpfs), and each takes an
inode, which a file system can run out of before its bytes. So the check before the first download
(`install`, and the estimate of `install --dry-run`) counts each file of a `files` version rounded up
to the file system's fragment size (`f_frsize`), one block per directory and per record dscache
writes, and one inode each, against `f_bavail` blocks and `f_favail` inodes. An archive's files are
known only by their number and total (`dscache-manifest.json`): each is counted with half a block of
slack (the average of a uniform tail). A file system that reports no inode count (`f_files` 0, some
network file systems) is not checked for inodes. Items already in staging or linked from a published
version take no more room.

Figures are estimates from above for `files` layouts (compression, deduplication or inline data can
make a file take less) and the expected value for archives.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from dscache.api.sizes import format_size
from dscache.layouts.plan import VersionPlan

RECORDS = 3
"""Files dscache writes into every version besides the plan's (completion, inventory, items)."""


@dataclass(frozen=True)
class Room:
    """What the file system holding `path` (the nearest existing directory) offers this user: `free`
    bytes, its `block` (allocation unit, bytes) and `inodes` free (None: not reported)."""

    path: Path
    free: int
    block: int
    inodes: int | None


@dataclass(frozen=True)
class Need:
    """What versions take: `disk` bytes allocated, `content` bytes of file content, `inodes`."""

    disk: int = 0
    content: int = 0
    inodes: int = 0

    def __add__(self, other: Need) -> Need:
        return Need(self.disk + other.disk, self.content + other.content, self.inodes + other.inodes)


def room(path: Path) -> Room | None:
    """The `Room` of the file system of `path` or of its nearest existing parent; None if none can be
    measured."""
    for candidate in (path, *path.absolute().parents):
        try:
            st = os.statvfs(candidate)
        except OSError:
            continue
        block = st.f_frsize or st.f_bsize or 4096
        inodes = st.f_favail if st.f_files else None
        return Room(candidate, st.f_bavail * block, block, inodes)
    return None


def allocated(size: int, block: int) -> int:
    """Pure: bytes a file of `size` bytes takes in whole blocks of `block` bytes."""
    return -(-size // block) * block


def _dirs(names: Collection[str]) -> set[str]:
    found: set[str] = set()
    for name in names:
        parent = name.rpartition("/")[0]
        while parent and parent not in found:
            found.add(parent)
            parent = parent.rpartition("/")[0]
    return found


def version_need(plan: VersionPlan, block: int, done: Collection[str] = ()) -> Need:
    """Pure: what installing `plan` still takes on a file system of `block`-byte blocks, the items
    named in `done` being in staging already (or linked: they take no more room)."""
    rest = [item for item in plan.items if item.name not in done]
    meta = [len(content) for content in plan.metadata.values()]
    fixed = Need(
        disk=sum(allocated(size, block) for size in meta) + RECORDS * block,
        content=sum(meta),
        inodes=len(meta) + RECORDS + 1,
    )
    if plan.layout != "archives":
        dirs = _dirs([item.name for item in rest])
        content = sum(item.expected_bytes for item in rest)
        disk = sum(allocated(item.expected_bytes, block) for item in rest) + len(dirs) * block
        return fixed + Need(disk, content, len(rest) + len(dirs))
    done_bytes = sum(item.expected_bytes for item in plan.items if item.name in done)
    content = max(plan.space_needed - done_bytes, 0)
    files = 0
    if plan.extracted_files is not None and plan.items:
        files = plan.extracted_files * len(rest) // len(plan.items)
    flags = len(rest)  # molmospaces' flag per archive: empty files
    return fixed + Need(content + files * block // 2, content, files + flags)


def shortage(need: Need, have: Room) -> str | None:
    """Pure: why `need` does not fit in `have`, as a phrase naming both; None if it fits."""
    if need.disk > have.free:
        disk, content, block = format_size(need.disk), format_size(need.content), format_size(have.block)
        return (
            f"the versions need about {disk} on disk ({content} of content in {need.inodes} files and "
            f"directories, each taking whole {block} blocks), {format_size(have.free)} is free"
        )
    if have.inodes is not None and need.inodes > have.inodes:
        return f"the versions need {need.inodes} inodes (files and directories), {have.inodes} are free"
    return None


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding `path` (or its nearest existing parent)."""
    here = path.absolute()
    while not here.exists() and here != here.parent:
        here = here.parent
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    return here
