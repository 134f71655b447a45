"""What a version directory holds: counts for its completion record, and what to copy or link.

Counts are those of `CompleteRecord.files` and `.bytes`, as the installer writes them: regular files and
symlinks (dscache's own metadata files at the top excluded); bytes are the regular files' sizes, a
symlink counts 0 bytes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from dscache.store.modes import is_executable
from dscache.store.paths import INVENTORY, METADATA_FILES
from dscache.store.records import CompleteRecord


@dataclass(frozen=True)
class TreeStats:
    """Dataset file count and regular-file bytes of a version directory."""

    files: int
    bytes: int

    def matches(self, record: CompleteRecord) -> bool:
        return self.files == record.files and self.bytes == record.bytes


def tree_stats(root: Path) -> TreeStats:
    """Count `root` without following links; raises FileNotFoundError if `root` is gone."""
    files = 0
    total = 0
    top = str(root)
    stack = [top]
    while stack:
        current = stack.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif current != top or entry.name not in METADATA_FILES:
                    files += 1
                    if not entry.is_symlink():
                        total += entry.stat(follow_symlinks=False).st_size
    return TreeStats(files, total)


@dataclass
class TreeListing:
    """Relative paths in a version: directories (parents first), files with sizes, links with targets,
    and the files that are executable."""

    dirs: list[str] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    executable: set[str] = field(default_factory=set)


def _safe_rel(rel: str) -> str:
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"unsafe path {rel!r} in {INVENTORY}")
    return rel


def listing_from_inventory(data: dict[str, object]) -> TreeListing:
    """Build a listing from `.dscache-inventory.json`: its `dirs` (empty ones included) plus the
    parents of every file and link."""
    files = data.get("files", {})
    links = data.get("links", {})
    listed = data.get("dirs", [])
    runnable = data.get("executable", [])
    if not isinstance(files, dict) or not isinstance(links, dict):
        raise ValueError(f"{INVENTORY} must map 'files' and 'links' to objects")
    if not isinstance(listed, list) or not isinstance(runnable, list):
        raise ValueError(f"{INVENTORY} must map 'dirs' and 'executable' to lists")
    listing = TreeListing(
        files={_safe_rel(str(k)): int(v) for k, v in files.items()},
        links={_safe_rel(str(k)): str(v) for k, v in links.items()},
        executable={str(p) for p in runnable},
    )
    dirs: set[str] = {_safe_rel(str(d)) for d in listed}
    for rel in [*listing.files, *listing.links, *dirs]:
        parent = rel.rpartition("/")[0]
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    listing.dirs = sorted(dirs)
    return listing


def listing_from_walk(root: Path) -> TreeListing:
    """Build a listing by walking `root` (used when a version has no inventory)."""
    listing = TreeListing()
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(root / rel_dir if rel_dir else root) as entries:
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                if entry.is_dir(follow_symlinks=False):
                    listing.dirs.append(rel)
                    stack.append(rel)
                elif not rel_dir and entry.name in METADATA_FILES:
                    continue
                elif entry.is_symlink():
                    listing.links[rel] = os.readlink(entry.path)
                else:
                    st = entry.stat(follow_symlinks=False)
                    listing.files[rel] = st.st_size
                    if is_executable(st.st_mode):
                        listing.executable.add(rel)
    listing.dirs.sort()
    return listing


def read_listing(version_dir: Path) -> TreeListing:
    """The version's listing: one read of its inventory (cheap on NFS), else a walk."""
    try:
        with open(version_dir / INVENTORY, "rb") as fh:
            data = json.loads(fh.read())
    except FileNotFoundError:
        return listing_from_walk(version_dir)
    if not isinstance(data, dict):
        raise ValueError(f"{version_dir / INVENTORY} is not a JSON object")
    return listing_from_inventory(data)
