"""Re-check published versions against their inventories: missing, extra, resized or re-typed entries."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.atomic import read_json
from dscache.store.catalog import find_published
from dscache.store.paths import INVENTORY, METADATA_FILES, CachePaths


@dataclass
class VersionCheck:
    """Differences between one version on disk and its inventory (empty lists: intact)."""

    key: VersionKey
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.changed or self.error)


def scan_tree(root: Path) -> tuple[dict[str, int], dict[str, str]]:
    """Regular files (with sizes) and symlinks (with targets) below `root`, relative paths."""
    files: dict[str, int] = {}
    links: dict[str, str] = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel)) as it:
            for entry in it:
                path = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_symlink():
                    links[path] = os.readlink(entry.path)
                elif entry.is_dir():
                    stack.append(path)
                else:
                    files[path] = entry.stat(follow_symlinks=False).st_size
    for name in METADATA_FILES:
        files.pop(name, None)
    return files, links


def compare(
    key: VersionKey,
    expected: tuple[dict[str, int], dict[str, str]],
    actual: tuple[dict[str, int], dict[str, str]],
) -> VersionCheck:
    """Pure: what differs between the inventory and the scanned tree."""
    want_files, want_links = expected
    have_files, have_links = actual
    check = VersionCheck(key)
    want = set(want_files) | set(want_links)
    have = set(have_files) | set(have_links)
    check.missing = sorted(want - have)
    check.extra = sorted(have - want)
    for path in sorted(want & have):
        file_changed = path in want_files and have_files.get(path) != want_files[path]
        link_changed = path in want_links and have_links.get(path) != want_links[path]
        if file_changed or link_changed:
            check.changed.append(path)
    return check


def verify_version(cache: CachePaths, key: VersionKey) -> VersionCheck:
    root = cache.version_dir(key)
    try:
        inv = read_json(root / INVENTORY)
        expected = ({k: int(v) for k, v in inv["files"].items()}, dict(inv["links"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        return VersionCheck(key, error=f"inventory {root / INVENTORY} unreadable: {err}")
    return compare(key, expected, scan_tree(root))


def verify_cache(cache: CachePaths) -> list[VersionCheck]:
    """Check every published version."""
    return [verify_version(cache, rec.key) for rec in find_published(cache)]
