"""Why a path given on the command line cannot be used as asked, in one line, before any work starts.

Each check returns None when the path is usable, else a message that starts with the path and says
what to fix: a regular file where a directory is expected (or the reverse), a missing or non-directory
parent, no permission, a read-only file system, a directory that is not a dscache cache. `os.access`
answers for the real user, so a non-root user is told before a write fails half-way (root passes
permission checks, as the kernel lets it). Standard library only (used by `dscache prepare`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dscache.store.filetypes import file_type
from dscache.store.paths import COMPLETE_RECORD, CONTROL_DIR

IGNORED_IN_EMPTY_VOLUME = frozenset({"lost+found"})
"""Entries a freshly formatted volume holds: such a directory is an empty cache, not a foreign one."""


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _not_writable(path: Path) -> str:
    if _read_only_fs(path):
        return f"{path} is on a read-only file system"
    return f"{path} is not writable by user id {os.geteuid()}"


def _nearest_existing(path: Path) -> Path:
    for parent in path.absolute().parents:
        if os.path.lexists(parent):
            return parent
    return Path("/")


def _creatable(path: Path) -> str | None:
    """Why `path` (which does not exist) cannot be created with its missing parents."""
    ancestor = _nearest_existing(path)
    try:
        mode = os.stat(ancestor).st_mode
    except OSError as err:
        return f"{path}: cannot create it: {ancestor}: {err.strerror}"
    if not stat.S_ISDIR(mode):
        return f"{path}: cannot create it: {ancestor} is {file_type(mode)}, not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{path}: cannot create it: {_not_writable(ancestor)}"
    return None


def _stat(path: Path) -> os.stat_result | str:
    """The stat of `path` (following links), or why there is none."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"{path}: a symlink to a missing target ({os.readlink(path)})"
        return "missing"
    except NotADirectoryError:
        ancestor = _nearest_existing(path)
        return f"{path}: {ancestor} is {file_type(os.stat(ancestor).st_mode)}, not a directory"
    except PermissionError:
        return f"{path}: permission denied (a parent directory cannot be searched by user id {os.geteuid()})"
    except OSError as err:
        return f"{path}: {err.strerror}"


def dir_problem(path: Path, *, create: bool = False, write: bool = False) -> str | None:
    """Why `path` cannot be used as a directory to read (and with `write`, to write in); with
    `create`, a missing directory is fine if it can be made. None when usable."""
    st = _stat(path)
    if st == "missing":
        return _creatable(path) if create else f"{path}: no such directory"
    if isinstance(st, str):
        return st
    if not stat.S_ISDIR(st.st_mode):
        return f"{path}: is {file_type(st.st_mode)}, not a directory"
    if not os.access(path, os.R_OK | os.X_OK):
        return f"{path}: permission denied (not readable by user id {os.geteuid()})"
    if write and not os.access(path, os.W_OK):
        return f"{path}: {_not_writable(path)}"
    return None


def file_problem(path: Path, *, write: bool = False) -> str | None:
    """Why `path` cannot be read as a file (with `write`: replaced or created, parents included,
    by tmp + rename in its directory). None when usable."""
    st = _stat(path)
    if st == "missing":
        if not write:
            return f"{path}: no such file"
        problem = dir_problem(path.absolute().parent, create=True, write=True)
        return None if problem is None else f"{path}: cannot write it: {problem}"
    if isinstance(st, str):
        return st
    if stat.S_ISDIR(st.st_mode):
        return f"{path}: is a directory, not a file"
    if write:
        problem = dir_problem(path.absolute().parent, write=True)
        return None if problem is None else f"{path}: cannot replace it: {problem}"
    if not os.access(path, os.R_OK):
        return f"{path}: permission denied (not readable by user id {os.geteuid()})"
    return None


def cache_problem(path: Path, what: str = "cache") -> str | None:
    """Why an existing directory is not a dscache `what` (cache, scratch directory): it has no
    `.dscache` control directory and holds something (an empty volume, `lost+found` aside, is one
    nothing was put into yet)."""
    if (path / CONTROL_DIR).is_dir():
        return None
    with os.scandir(path) as entries:
        foreign = next((e.name for e in entries if e.name not in IGNORED_IN_EMPTY_VOLUME), None)
    if foreign is None:
        return None
    return (
        f"{path}: not a dscache {what} (it holds {foreign!r} but no {CONTROL_DIR}/ directory); check the path"
    )


def _resolved(path: Path) -> Path:
    """`path` absolute, with the symlinks of its existing part resolved (the rest as written)."""
    here, rest = Path(os.path.abspath(path)), []
    while not os.path.lexists(here) and here != here.parent:
        rest.append(here.name)
        here = here.parent
    return Path(os.path.realpath(here)).joinpath(*reversed(rest))


def _versions_below(root: Path) -> str | None:
    """The first published version (a directory holding a completion record) at or below `root`,
    not looking into versions or into other caches; None if none."""
    for dirpath, dirnames, filenames in os.walk(root):
        if COMPLETE_RECORD in filenames:
            return dirpath
        dirnames[:] = [d for d in dirnames if d != CONTROL_DIR]
    return None


def nesting_problem(path: Path) -> str | None:
    """Why `path` cannot be made a cache: it lies in another cache's (or scratch directory's) control
    directory `.dscache/` or in one of its published versions (which never change), or it lies in
    another cache and holds some of that cache's published versions (its own `.dscache/` would hide
    them from that cache's status, verify and gc). A cache may lie elsewhere in another one (that
    one's status, verify and gc skip it) and may hold other caches. None when usable."""
    here = _resolved(path)
    for level in (here, *here.parents):
        if level.name == CONTROL_DIR:
            return (
                f"{path}: inside {level}, the control directory of the cache {level.parent}; use a "
                "directory outside it"
            )
        if os.path.isfile(level / COMPLETE_RECORD):
            return (
                f"{path}: inside {level}, a published version (its files never change); use a directory "
                "outside it"
            )
        if level != here and os.path.isdir(level / CONTROL_DIR) and os.path.isdir(here):
            held = _versions_below(here)
            if held is not None:
                return (
                    f"{path}: inside the cache {level} and around its published version {held}, which a "
                    f"cache here would hide from it; use a directory outside {level}"
                )
    return None
