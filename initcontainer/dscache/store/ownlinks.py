"""One rule for every command: a symlink where dscache keeps its own directory is refused, never followed.

dscache's own directories are the control directory `.dscache` and everything directly in it (refs,
staging, trash, the lock and team files), and for each version it knows (named by a ref, or asked
for on the command line) the levels of its path: `<dt>`, `<dt>/<src...>`, `<dt>/<src...>/<ver>`, and
the same levels below `.dscache/staging`. A symlink at one of them (say `objects` moved to another
disk and linked back) would make `status` and `verify` look at nothing, `gc` and `release` delete
through it, and `prepare` link pods into a tree the writer lock does not cover; so `status`, `verify`,
`gc`, `release`, `install` and `prepare` all refuse such a cache before any work, with one line
naming the symlink and what to do. Nothing follows it, nothing deletes through it. Only `lstat`s
and the refs' small JSON files are read (standard library only: `dscache prepare` uses it).
"""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.paths import CachePaths
from dscache.store.records import RefError, read_ref, scan_refs


def _levels(root: Path, key: VersionKey, where: str) -> Iterator[tuple[Path, str]]:
    """(path, role) of each directory level of `key` below `root`, outermost first."""
    parts = key.rel.split("/")
    path = root
    for depth, name in enumerate(parts):
        path = path / name
        if depth == 0:
            role = f"the data type directory of version {key}{where}"
        elif depth == len(parts) - 1:
            role = f"the directory of version {key}{where}"
        else:
            role = f"a source directory of version {key}{where}"
        yield path, role


def own_dirs(cache: CachePaths, keys: Iterable[VersionKey]) -> Iterator[tuple[Path, str]]:
    """(path, role) of every place dscache keeps its own directory for `keys` (see the module doc)."""
    yield cache.control, "dscache's control directory"
    try:
        with os.scandir(cache.control) as entries:
            inside = sorted(e.name for e in entries)
    except OSError:
        inside = []
    for name in inside:
        yield cache.control / name, f"dscache's {name} in its control directory"
    for key in sorted(set(keys)):
        yield from _levels(cache.root, key, "")
        yield from _levels(cache.staging_root, key, " in staging")


def ref_keys(cache: CachePaths, names: Iterable[str] | None = None) -> list[VersionKey]:
    """The versions the refs `names` (None: every ref) name; unreadable or missing refs name none
    (the commands that need them report them)."""
    if names is None:
        return [e.key for r in scan_refs(cache).refs for e in r.versions]
    out: list[VersionKey] = []
    for name in names:
        try:
            ref = read_ref(cache, name)
        except (RefError, ValueError):
            continue
        if ref is not None:
            out.extend(e.key for e in ref.versions)
    return out


def own_link_problem(cache: CachePaths, keys: Iterable[VersionKey]) -> str | None:
    """One line naming the first symlink at one of dscache's own directories (`own_dirs`) and what to
    do, or None. Raises nothing: a level that cannot be examined is left to the command."""
    for path, role in own_dirs(cache, keys):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISLNK(st.st_mode):
            continue
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        moved = os.path.normpath(os.path.join(path.parent, target))
        if not os.path.isdir(moved):  # dangling, or not to a directory: nothing to move back
            return (
                f"{path}: a dangling symlink (to {target}) is where dscache keeps {role}; dscache does not "
                f"follow it: remove it (rm {shlex.quote(str(path))}), then run this again"
            )
        fix = f"rm {shlex.quote(str(path))} && mv {shlex.quote(moved)} {shlex.quote(str(path))}"
        return (
            f"{path}: a symlink (to {target}) is where dscache keeps {role}; dscache does not follow it "
            f"(nor delete through it): put the directory itself there ({fix}), then run this again"
        )
    return None
