"""What dscache may replace on a cache volume: only what it can prove is its own.

A version's path `<cache>/<dt>/<src...>/<ver>` may be published over when it is absent, an empty
directory, or a directory holding one of dscache's own records (`.dscache-complete.json`, even
unreadable, `.dscache-inventory.json`, `.dscache-items.json`): dscache renames whole trees into
place, each holding those records, so it never leaves anything else there. Anything else (a user's
directory, a regular file, a symlink, at the version's path or at one of its parent levels
`<dt>`, `<dt>/<src...>`) is refused before any transfer, naming the path; nothing is moved or
deleted. A non-empty directory that is not a dscache cache can therefore be used as one: dscache
adds its control dir and its versions next to what is there and never touches the rest.
"""

from __future__ import annotations

import os
import stat

from dscache.api.names import VersionKey
from dscache.errors import DscacheError
from dscache.store.paths import METADATA_FILES, CachePaths


class NotOursError(DscacheError):
    """Something dscache did not create is where a version goes; the message names it."""


def occupant_problem(cache: CachePaths, key: VersionKey) -> str | None:
    """One line naming what dscache cannot prove its own at `key`'s path or its parent levels (and
    what to do), or None if the version may be published there. Only `lstat`s and one `listdir`."""
    where = cache.root
    levels = key.rel.split("/")
    for depth, name in enumerate(levels):
        where = where / name
        try:
            st = os.lstat(where)
        except FileNotFoundError:
            return None
        last = depth == len(levels) - 1
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "a file"
            role = f"version {key}'s path" if last else f"a directory level of version {key}"
            return (
                f"{where}: {kind} dscache did not create is at {role}; move it away (or install another "
                "version or into another --cache), then install again"
            )
        if last and not _is_ours(where):
            return (
                f"{where}: a directory dscache did not create (it holds none of dscache's records) is at "
                f"version {key}'s path; move it away (or install another version or into another --cache), "
                "then install again"
            )
    return None


def _is_ours(version_dir: os.PathLike[str]) -> bool:
    """An empty directory, or one holding one of dscache's records as a regular file."""
    names = os.listdir(version_dir)
    if not names:
        return True
    for name in METADATA_FILES.intersection(names):
        if stat.S_ISREG(os.lstat(os.path.join(version_dir, name)).st_mode):
            return True
    return False


def check_ours(cache: CachePaths, keys: list[VersionKey]) -> None:
    """Raise NotOursError for the first of `keys` whose path holds something dscache did not create."""
    for key in keys:
        problem = occupant_problem(cache, key)
        if problem is not None:
            raise NotOursError(problem)
