"""Re-check published versions against their records: missing, extra, resized, re-typed or re-moded
entries, directories that cannot be read, and (on request) files whose bytes changed.

By default a check costs one `lstat` per entry (0.22-0.30 s per 50,000 files on a local disk), so it
is cheap enough to run after every install (`install` warns about damaged present versions). Bytes
changed in place keep the size; finding them means reading every byte (`content=True`, `dscache
verify --content`): sha256 runs at 0.07-0.09 s per 100 MB in the page cache (`store/content.py`), so
a cache of several TB takes hours, bound by the disk's read rate. Hence sizes and modes by default,
content on request. The items record (`store/shares.py`) has a digest per file of the `files`
layout, and the sha256 of each file an archive put into a version (hashed while it was extracted,
kept for archives whose whole tree the version holds); members without one (extracted by an older
dscache, or of an archive a later one partly replaced) are checked by size only, and so are the files
dscache wrote beside the items (the remote's manifests, extraction flags). A check counts each kind
(`VersionCheck`), so `verify --content` states per version what it hashed and what it checked by size only.

A file is "changed" when its size or type differs from the inventory, or when the inventory lists it
executable and no execute bit is left on disk (scripts would fail with "Permission denied"). A path
whose mode is not the one dscache freezes a version with (files `r--r--r--` or `r-xr-xr-x`,
`store/modes.py`; directories, the version's own included, `r-xr-xr-x`, `store/fsops.py`) is listed
under `modes`: a published version is meant to be readable by every pod's user and writable by none.
Volumes that do not keep modes (SMB mounts without Unix extensions show every file as 0777) report
every path there: on such a volume anyone can indeed change a version.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.atomic import read_json
from dscache.store.content import expected_digest, holds
from dscache.store.fsops import FROZEN_DIR_MODE
from dscache.store.modes import file_mode, is_executable
from dscache.store.paths import INVENTORY, METADATA_FILES, CachePaths
from dscache.store.shares import read_items

ROOT = "."
"""The version directory itself, as a path in a check."""


@dataclass(frozen=True)
class ModeChange:
    """A path whose permission bits (`have`) are not the ones dscache gave it (`want`)."""

    path: str
    have: int
    want: int

    @property
    def problem(self) -> str:
        """Pure: what the difference means for readers, e.g. "0700, want 0555: not readable by all"."""
        what: list[str] = []
        if self.want & ~self.have & 0o555:
            what.append("not readable by all")
        if self.have & 0o222:
            what.append("writable")
        if self.have & 0o7000:
            what.append("setuid/setgid/sticky")
        if not what:
            what.append("other bits")
        return f"{self.have:04o}, want {self.want:04o}: {', '.join(what)}"


@dataclass
class VersionCheck:
    """Differences between one version on disk and its records (empty lists: intact)."""

    key: VersionKey
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    modes: list[ModeChange] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    """Path -> why it could not be read (a directory not listed, a file not hashed)."""
    error: str | None = None
    content: bool = False
    """Whether bytes were checked (`content=True`); the counts below are 0 otherwise."""
    hashed: int = 0
    """Files whose bytes were checked against a digest (`content=True`)."""
    unhashed: int = 0
    """Files that have no digest of their own: checked by size only (`members` + `others`)."""
    members: int = 0
    """Of `unhashed`, the files archives put into the version with no sha256 of their own (extracted by
    an older dscache, which recorded only the archive's digest)."""
    others: int = 0
    """Of `unhashed`, the rest: files dscache wrote beside the items (the remote's manifests, extraction
    flags), members of an archive whose tree the items record does not keep (a later archive replaced
    part of it), files whose item recorded no digest."""
    not_read: int = 0
    """Files with a digest that were not hashed because they are already reported (missing, changed,
    unreadable)."""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.changed or self.modes or self.unreadable or self.error)

    def damaged(self) -> frozenset[str] | None:
        """The paths a repair must fetch again (None: the records are unreadable, all of it is suspect).
        A file whose only damage is its mode is not among them: a repair hashes it and copies it with
        dscache's mode (`install.share.place`), and directories are made anew in any fresh copy."""
        if self.error:
            return None
        return frozenset([*self.missing, *self.changed, *self.unreadable])


@dataclass
class TreeState:
    """Regular files (with sizes), symlinks (with targets), the executable files of a version and,
    when scanned from disk, the permission bits of its files and directories and what could not be
    listed."""

    files: dict[str, int] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    executable: set[str] = field(default_factory=set)
    modes: dict[str, int] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    unreadable: dict[str, str] = field(default_factory=dict)


def scan_tree(root: Path) -> TreeState:
    """What is below `root` (relative paths), without following links. A directory that cannot be
    listed is recorded in `unreadable`, not raised. Raises OSError only if `root` cannot be stat'ed."""
    state = TreeState()
    state.modes[ROOT] = stat.S_IMODE(os.lstat(root).st_mode)
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(root, rel)) as it:
                entries = list(it)
        except OSError as err:
            state.unreadable[rel or ROOT] = err.strerror or str(err)
            continue
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed while scanned: reported missing
                continue
            if stat.S_ISLNK(st.st_mode):
                state.links[path] = os.readlink(entry.path)
                continue
            state.modes[path] = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                state.dirs.add(path)
                stack.append(path)
            else:
                state.files[path] = st.st_size
                if is_executable(st.st_mode):
                    state.executable.add(path)
    for name in METADATA_FILES:
        state.files.pop(name, None)
        state.modes.pop(name, None)
    return state


def _below(path: str, dirs: dict[str, str]) -> bool:
    return ROOT in dirs or any(path.startswith(f"{d}/") for d in dirs)


def compare(key: VersionKey, expected: TreeState, actual: TreeState) -> VersionCheck:
    """Pure: what differs between the inventory and the scanned tree."""
    check = VersionCheck(key, unreadable=dict(actual.unreadable))
    want = set(expected.files) | set(expected.links)
    have = set(actual.files) | set(actual.links)
    check.missing = sorted(p for p in want - have if not _below(p, actual.unreadable))
    check.extra = sorted(have - want)
    for path in sorted(want & have):
        file_changed = path in expected.files and actual.files.get(path) != expected.files[path]
        link_changed = path in expected.links and actual.links.get(path) != expected.links[path]
        mode_lost = path in expected.executable and path not in actual.executable
        if file_changed or link_changed or mode_lost:
            check.changed.append(path)
    wanted = {p: file_mode(p in expected.executable) for p in set(expected.files) & set(actual.files)}
    wanted.update(dict.fromkeys([ROOT, *actual.dirs], FROZEN_DIR_MODE))
    check.modes = [
        ModeChange(path, actual.modes[path], mode)
        for path, mode in sorted(wanted.items())
        if path in actual.modes and actual.modes[path] != mode
    ]
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


def check_content(root: Path, check: VersionCheck, files: dict[str, int]) -> None:
    """Hash each file of the version at `root` (`files`: the inventory's, path -> bytes) that its items
    record gives a digest and that is not already reported; add those whose bytes differ to
    `check.changed`, those that cannot be read to `check.unreadable`, and count both kinds of files."""
    layout, items = read_items(check.key, root)
    digests = (
        {item.name: expected_digest(item.sha256, item.md5) for item in items} if layout == "files" else {}
    )
    members = {path for item in items if item.extracted for path in item.extracted.get("files", {})}
    for item in items:
        if layout == "archives" and item.extracted:
            sums = dict(item.extracted.get("fileSha256", {}))
            digests.update({path: ("sha256", str(hex_).lower()) for path, hex_ in sums.items()})
    reported = {*check.missing, *check.changed, *check.unreadable}
    check.content = True
    for path in sorted(files):
        digest = digests.get(path)
        if digest is None:
            check.unhashed += 1
            if path in members:
                check.members += 1
            else:
                check.others += 1
            continue
        if path in reported or _below(path, check.unreadable):
            check.not_read += 1
            continue
        try:
            same = holds(root / path, digest)
        except OSError as err:
            check.unreadable[path] = err.strerror or str(err)
            continue
        check.hashed += 1
        if not same:
            check.changed.append(path)
    check.changed.sort()


def verify_version(cache: CachePaths, key: VersionKey, *, content: bool = False) -> VersionCheck:
    """Check the published version `key` against its inventory (sizes, types, modes) and, with
    `content`, its files' bytes against its items record. Never raises OSError: what cannot be read
    is reported in the check."""
    root = cache.version_dir(key)
    try:
        expected = read_inventory(root / INVENTORY)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return VersionCheck(key, error=f"inventory {root / INVENTORY} unreadable: {err}")
    try:
        actual = scan_tree(root)
    except OSError as err:
        return VersionCheck(key, error=f"{err.filename or root}: {err.strerror}")
    check = compare(key, expected, actual)
    if content:
        check_content(root, check, expected.files)
    return check
