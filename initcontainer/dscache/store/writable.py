"""Before an install transfers a byte: can it write every path it will write?

An install writes the writer lock, each version's staging dir, the published version's parent dirs
(the rename into place), the ref, and on a repair the trash (`paths.py`). A path dscache keeps there
that is the wrong kind (`.dscache/refs` as a file, say) or a directory this user cannot write used
to fail only after the transfer, when the version was already published or its bytes were staged.
`write_problem` finds that up front with `lstat` and `access` alone (nothing is created), naming the
path in one line. Root passes every `access` check, as it passes the writes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.errors import DscacheError
from dscache.store.filetypes import file_type
from dscache.store.paths import CachePaths


class NotWritableError(DscacheError):
    """A path the install must write is the wrong kind or not writable; the message names it."""


def _why_not_writable(path: Path) -> str:
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
    except OSError:
        pass
    return f"not writable by user id {os.geteuid()}"


def _dir_problem(path: Path, purpose: str, *, access: bool, kinds: bool = True) -> str | None:
    """Why dscache cannot keep `purpose` in the directory `path` (missing is fine: it is made in its
    nearest existing parent, which must then be writable), or None. Without `kinds`, something other
    than a directory on the way is not this check's to name (`store.ownership` names it)."""
    at = path
    while True:
        try:
            st = os.stat(at)  # a symlink to a directory is followed, as the writes follow it
        except FileNotFoundError:
            if os.path.lexists(at):
                return (
                    f"{at}: a dangling symlink where dscache keeps {purpose} in a directory; move it away, "
                    "then install again (nothing was installed)"
                )
            at = at.parent
            continue
        except NotADirectoryError:
            at = at.parent  # a file on the way: found (and named) one level up
            continue
        if not stat.S_ISDIR(st.st_mode):
            if not kinds:
                return None
            where = "" if at == path else f" on the way to {path}"
            return (
                f"{at}: {file_type(os.lstat(at).st_mode)}{where}, but dscache keeps {purpose} in a directory "
                "there; move it away, then install again (nothing was installed)"
            )
        if access and not os.access(at, os.W_OK | os.X_OK):
            made = "" if at == path else f" (to make {path})"
            return (
                f"{at}: {_why_not_writable(at)}, and dscache writes {purpose} there{made}; fix that, then "
                "install again (nothing was installed)"
            )
        return None


def _lock_problem(cache: CachePaths) -> str | None:
    """The writer lock is a lease file made and removed in the control dir (`lock.py`): the dir's
    access is what counts; something other than a file at its path would hold the lock forever."""
    try:
        st = os.lstat(cache.lock_path)
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        return None
    return (
        f"{cache.lock_path}: {file_type(st.st_mode)}, but dscache keeps its writer lock in a file there; "
        "move it away, then install again (nothing was installed)"
    )


def write_problem(cache: CachePaths, keys: list[VersionKey], *, repair: bool = False) -> str | None:
    """One line naming the first path an install of `keys` could not write, or None.

    The kinds of dscache's own paths (refs, staging, trash: directories; the writer lock: a file) are
    checked always; that they are writable only when there is something to install (`keys`), since an
    install with nothing to fetch writes at most the ref. The trash is written only by a `repair`."""
    access = bool(keys)
    checks: list[tuple[Path, str]] = [
        (cache.control, "its control files (lock, refs, staging)"),
        (cache.refs_dir, "its refs"),
        (cache.staging_root, "the staging of installs"),
    ]
    problem = _lock_problem(cache)
    if problem is not None:
        return problem
    for path, purpose in checks:
        problem = _dir_problem(path, purpose, access=access)
        if problem is not None:
            return problem
    problem = _dir_problem(cache.trash_dir, "what it removes (its trash)", access=access and repair)
    if problem is not None:
        return problem
    for key in keys:
        problem = _dir_problem(cache.staging_dir(key), f"the staging of {key}", access=True) or _dir_problem(
            cache.version_dir(key).parent, f"version {key}", access=True, kinds=False
        )
        if problem is not None:
            return problem
    return None


def check_writable(cache: CachePaths, keys: list[VersionKey], *, repair: bool = False) -> None:
    """Raise NotWritableError with `write_problem`'s line, if there is one."""
    problem = write_problem(cache, keys, repair=repair)
    if problem is not None:
        raise NotWritableError(problem)
