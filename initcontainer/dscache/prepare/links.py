"""Stable, version-free paths `<links>/<dt>/<src>` pointing at versions, with relative links.

- directory strategy: `<links>/<dt>/<src>` is one relative symlink to the version dir.
- perFile strategy: `<links>/<dt>/<src>` is a real directory tree whose files are relative symlinks,
  so `../` between files (and between sources) resolves inside the links tree.

Each link or tree is built under a temporary name next to its final path and swapped into place, so a
reader sees the old version or the new one, never nothing; replaced trees are deleted only once every
link is in place, giving path lookups already inside them time to finish.
`<links>/.dscache-links.json` records what was linked, so links to versions no longer requested can be
removed without walking per-file trees.

Only what dscache made is ever replaced or removed: a symlink it recorded or one pointing into the
cache or scratch, an empty directory, or a per-file tree (directories and such symlinks only). Any
other entry at a link path (a user's file, directory or symlink) stops `apply_links` before it changes
anything (`LinkPathInUseError`); a recorded stale slot now holding such an entry is left alone.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from dscache.api.names import NameError_, VersionKey, check_segment, check_source
from dscache.errors import InvalidInputError
from dscache.prepare.rmtree import remove_tree
from dscache.prepare.treewalk import read_listing
from dscache.store import swap
from dscache.store.atomic import write_json_atomic
from dscache.store.filetypes import file_type
from dscache.store.liveness import left_by_dead_process

STATE_FILE = ".dscache-links.json"
DIRECTORY = "directory"
PER_FILE = "perFile"
STRATEGIES = (DIRECTORY, PER_FILE)


class LinkPathInUseError(InvalidInputError):
    """A link path holds something dscache did not create; the message names it and what to do."""


@dataclass(frozen=True)
class LinkSpec:
    """Link the version `key` with `strategy` to the (absolute) version directory `target`."""

    key: VersionKey
    strategy: str
    target: Path


def link_path(links: Path, key: VersionKey) -> Path:
    return links / key.data_type / key.source


def per_file_target(rel_to_version: str, file_rel: str) -> str:
    """Relative symlink text for `file_rel` inside a per-file tree whose root's parent is the start of
    `rel_to_version` (the relative path from that parent to the version dir)."""
    return "../" * (file_rel.count("/") + 1) + f"{rel_to_version}/{file_rel}"


_TEMP_MARK = ".dscache-new."


def _temp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}{_TEMP_MARK}{os.getpid()}.{os.urandom(4).hex()}")


def _sweep_leftovers(parent: Path) -> None:
    """Delete temp links and trees that a killed earlier run left in `parent`."""
    for entry in os.scandir(parent):
        mine = entry.name.startswith(".") and _TEMP_MARK in entry.name
        if mine and left_by_dead_process(entry.name.rsplit(".", 2)[-2]):
            _delete(Path(entry.path))


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        remove_tree(path)
    else:
        path.unlink(missing_ok=True)


def _link_directory(path: Path, rel: str) -> Path | None:
    """Point the symlink `path` at `rel`; returns what it replaced, to delete later."""
    try:
        if os.readlink(path) == rel:
            return None
    except OSError:
        pass
    _sweep_leftovers(path.parent)
    tmp = _temp_beside(path)
    os.symlink(rel, tmp)
    return swap.replace(tmp, path)


def _link_per_file(path: Path, target: Path, rel: str) -> Path | None:
    """Build the per-file tree of `target` at `path`; returns what it replaced, to delete later."""
    listing = read_listing(target)
    _sweep_leftovers(path.parent)
    tmp = _temp_beside(path)
    os.mkdir(tmp)
    try:
        for d in listing.dirs:
            os.mkdir(tmp / d)
        for file_rel in [*listing.files, *listing.links]:
            os.symlink(per_file_target(rel, file_rel), tmp / file_rel)
        return swap.replace(tmp, path)
    except BaseException:
        remove_tree(tmp, ignore_errors=True)
        raise


def read_state(links: Path) -> dict[str, dict[str, str]]:
    """What the previous run linked: slot -> {strategy, target}; empty if unknown."""
    try:
        with open(links / STATE_FILE, "rb") as fh:
            data = json.loads(fh.read())
    except (OSError, ValueError):
        return {}
    slots = data.get("slots") if isinstance(data, dict) else None
    return slots if isinstance(slots, dict) else {}


def _is_slot(slot: str) -> bool:
    """Whether a slot read back from the state file is a safe `<dt>/<src>` (never delete elsewhere)."""
    data_type, _, source = slot.partition("/")
    try:
        check_segment(data_type, "data type")
        check_source(source)
    except NameError_:
        return False
    return True


def _points_into(link: str, roots: tuple[str, ...]) -> bool:
    """Whether the symlink `link` resolves (even dangling) to a root or below it."""
    real = os.path.realpath(os.path.join(os.path.dirname(link), os.readlink(link)))
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _foreign_in_tree(root: Path, recorded: bool, roots: tuple[str, ...]) -> str | None:
    """The first entry below `root` that a per-file tree never holds, or None."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*filenames, *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))]:
            entry = os.path.join(dirpath, name)
            if not os.path.islink(entry) or not (recorded or _points_into(entry, roots)):
                return entry
    return None


def foreign_entry(path: Path, recorded: dict[str, str] | None, roots: tuple[str, ...]) -> str | None:
    """Why the entry at `path` is not dscache's to replace, or None (absent, or made by dscache).

    `recorded` is the slot's entry in the state file (None: not recorded); `roots` are the real paths
    (cache, scratch) that dscache's own links point into."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return f"a parent directory of {path} is a file that dscache did not create"
    if stat.S_ISLNK(mode):
        if recorded is not None or _points_into(str(path), roots):
            return None
        return f"{path} is a symlink to {os.readlink(path)} that dscache did not create"
    if stat.S_ISDIR(mode):
        with os.scandir(path) as entries:
            if next(entries, None) is None:
                return None
        per_file = isinstance(recorded, dict) and recorded.get("strategy") == PER_FILE
        inside = _foreign_in_tree(path, per_file, roots)
        if inside is None:
            return None
        if per_file:  # the tree is dscache's (recorded); only what was put into it is not
            return (
                f"{path} is a per-file tree dscache made, but it now holds {inside}, which dscache did "
                "not create"
            )
        return f"{path} is a directory holding {inside}, which dscache did not create"
    return f"{path} is {file_type(mode)} that dscache did not create"


def _replaces(path: Path, spec: LinkSpec, entry: dict[str, str], old: dict[str, str] | None) -> bool:
    """Whether linking `spec` replaces what is at `path` (the warm path replaces nothing)."""
    if spec.strategy == DIRECTORY:
        try:
            return os.readlink(path) != entry["target"]
        except FileNotFoundError:
            return False
        except OSError:  # not a symlink, or a parent is not a directory
            return True
    return old != entry or path.is_symlink() or not path.is_dir()


def _symlinked_ancestor(links: Path, slot: str) -> Path | None:
    """The first directory between `links` and the slot's path that is a symlink (it leads out of
    `links`, e.g. into the cache), or None."""
    parts = slot.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        path = links.joinpath(*parts[:depth])
        if path.is_symlink():
            return path
    return None


def _check_free(
    links: Path,
    spec: LinkSpec,
    *,
    entry: dict[str, str],
    recorded: dict[str, str] | None,
    roots: tuple[str, ...],
    stale: list[str],
) -> None:
    """Raise `LinkPathInUseError` unless `spec` can be linked without touching what others made."""
    path = link_path(links, spec.key)
    ancestor = _symlinked_ancestor(links, spec.key.slot)
    if ancestor is not None and str(ancestor.relative_to(links)) not in stale:
        problem: str | None = f"{ancestor} is a symlink, so {path} would be made outside --links"
    elif _replaces(path, spec, entry, recorded):
        problem = foreign_entry(path, recorded, roots)
    else:
        problem = None
    if problem is not None:
        raise LinkPathInUseError(f"--links: {problem}; remove it or choose another --links directory")


def _remove_stale(links: Path, slot: str) -> Path | None:
    """Take a stale link or tree out of sight; returns a renamed-away tree to delete later."""
    path = links / slot
    aside = None
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        aside = _temp_beside(links / "stale")
        os.rename(path, aside)
    parent = path.parent
    while parent != links:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent
    return aside


def apply_links(links: Path, specs: list[LinkSpec], owned_roots: tuple[Path, ...] = ()) -> None:
    """Make `<links>` show exactly `specs`: create or re-point each link, remove the stale ones.

    `owned_roots` (the cache and scratch dirs) tell dscache's links from others. Raises
    `LinkPathInUseError` before changing anything if a link path holds an entry dscache did not create.
    """
    roots = tuple(os.path.realpath(r) for r in owned_roots)
    old_state = read_state(links)
    new_state: dict[str, dict[str, str]] = {}
    for spec in specs:
        path = link_path(links, spec.key)
        new_state[spec.key.slot] = {
            "strategy": spec.strategy,
            "target": os.path.relpath(spec.target, path.parent),
        }
    stale = [
        slot
        for slot in old_state.keys() - new_state.keys()
        if _is_slot(slot)
        and _symlinked_ancestor(links, slot) is None
        and foreign_entry(links / slot, old_state[slot], roots) is None
    ]
    for spec in specs:
        recorded = old_state.get(spec.key.slot)
        _check_free(links, spec, entry=new_state[spec.key.slot], recorded=recorded, roots=roots, stale=stale)
    links.mkdir(parents=True, exist_ok=True)
    if stale:
        _sweep_leftovers(links)
    garbage = [_remove_stale(links, slot) for slot in stale]
    for spec in specs:
        path = link_path(links, spec.key)
        entry = new_state[spec.key.slot]
        path.parent.mkdir(parents=True, exist_ok=True)
        if spec.strategy == DIRECTORY:
            garbage.append(_link_directory(path, entry["target"]))
        elif old_state.get(spec.key.slot) != entry or path.is_symlink() or not path.is_dir():
            garbage.append(_link_per_file(path, spec.target, entry["target"]))
    if new_state != old_state:
        write_json_atomic(links / STATE_FILE, {"slots": new_state})
    for old in garbage:
        if old is not None:
            _delete(old)
