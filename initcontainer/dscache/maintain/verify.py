"""Re-check published versions against their inventories: missing, extra, resized or re-typed entries.

A file is also "changed" when the inventory lists it executable and no execute bit is left on disk
(scripts would fail with "Permission denied"). Extra permission bits are not reported: volumes that
do not keep modes (SMB mounts show every file as 0777) would report every file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.atomic import read_json
from dscache.store.modes import is_executable
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


@dataclass
class TreeState:
    """Regular files (with sizes), symlinks (with targets) and the executable files of a version."""

    files: dict[str, int] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    executable: set[str] = field(default_factory=set)


def scan_tree(root: Path) -> TreeState:
    """What is below `root` (relative paths), without following links."""
    state = TreeState()
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel)) as it:
            for entry in it:
                path = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_symlink():
                    state.links[path] = os.readlink(entry.path)
                elif entry.is_dir():
                    stack.append(path)
                else:
                    st = entry.stat(follow_symlinks=False)
                    state.files[path] = st.st_size
                    if is_executable(st.st_mode):
                        state.executable.add(path)
    for name in METADATA_FILES:
        state.files.pop(name, None)
    return state


def compare(key: VersionKey, expected: TreeState, actual: TreeState) -> VersionCheck:
    """Pure: what differs between the inventory and the scanned tree."""
    check = VersionCheck(key)
    want = set(expected.files) | set(expected.links)
    have = set(actual.files) | set(actual.links)
    check.missing = sorted(want - have)
    check.extra = sorted(have - want)
    for path in sorted(want & have):
        file_changed = path in expected.files and actual.files.get(path) != expected.files[path]
        link_changed = path in expected.links and actual.links.get(path) != expected.links[path]
        mode_lost = path in expected.executable and path not in actual.executable
        if file_changed or link_changed or mode_lost:
            check.changed.append(path)
    return check


def read_inventory(path: Path) -> TreeState:
    """The expected state from `.dscache-inventory.json` (older ones have no `executable`).

    Raises OSError, ValueError, KeyError or TypeError if it is unreadable.
    """
    inv = read_json(path)
    return TreeState(
        {k: int(v) for k, v in inv["files"].items()},
        dict(inv["links"]),
        {str(p) for p in inv.get("executable", [])},
    )


def verify_version(cache: CachePaths, key: VersionKey) -> VersionCheck:
    root = cache.version_dir(key)
    try:
        expected = read_inventory(root / INVENTORY)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return VersionCheck(key, error=f"inventory {root / INVENTORY} unreadable: {err}")
    return compare(key, expected, scan_tree(root))
