"""dscache's own paths on a cache volume, checked before any work: one walk, two rules.

dscache's own paths are the control directory `.dscache` and everything directly in it (refs,
staging, trash, the writer lock and team files), and for each version it knows (named by a ref, or
asked for on the command line) the levels of its path: `<dt>`, `<dt>/<src...>`, `<dt>/<src...>/<ver>`,
and the same levels below `.dscache/staging`, which are also the install's own for each version it
is about to stage (`Writes.keys`) (`paths.py`).

The link rule (every command: `status`, `verify`, `gc`, `release`, `install`, `prepare`): a symlink at
one of them (say `objects` moved to another disk and linked back) would make `status` and `verify`
look at nothing, `gc` and `release` delete through it, and `prepare` link pods into a tree the writer
lock does not cover; such a cache is refused before any work, with one line naming the symlink and
what to do (`Problem.usage`). Nothing follows it, nothing deletes through it.

The write rule (the commands that write: `install`, `gc`, `release`; `Writes` says what each writes,
`install_writes` and `removal_writes` build it):
a path dscache keeps there that is the wrong kind (`.dscache/refs` as a file, say) or a directory this
user cannot write used to fail only once the command was under way (an install after the transfer, a
release after removing versions but not its ref); it is found up front, naming the path in one line.
Missing directories are fine when their nearest existing parent is writable (they are made there).
Root passes every `access` check, as it passes the writes, except on a read-only file system.

Both rules go over the paths in one pass, in one order (the control dir, its entries, the versions'
levels, then the paths only the write rule names), and every message ends the same way: what to do,
then run the command again. Only `lstat`, `stat`, `access`, `statvfs` and the refs' small JSON files
are used: standard library only (`dscache prepare` uses it).
"""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.errors import DscacheError
from dscache.store.filetypes import file_type
from dscache.store.paths import CachePaths
from dscache.store.records import RefError, read_ref, scan_refs

INSTALL_AGAIN = "install again (nothing was installed)"


class NotWritableError(DscacheError):
    """A path the command must write is the wrong kind or not writable; the message names it."""


@dataclass(frozen=True)
class Problem:
    """One line naming a path and what to do. `usage`: the link rule refused the cache as given (exit
    2, the caller names its flag); else the write rule (exit 1)."""

    line: str
    usage: bool


@dataclass(frozen=True)
class Writes:
    """What a command writes, for the write rule. The kinds of the control dir, refs, staging, trash
    (directories) and the writer lock (a file) are checked always; the flags say which of them must
    also be writable."""

    control: bool = False
    """It makes the writer lock (and other control files) in the control dir."""
    refs: bool = False
    staging: bool = False
    trash: bool = False
    keys: Sequence[VersionKey] = ()
    """Versions it stages and publishes: their staging dirs and their parents in the cache."""
    removes: Sequence[tuple[Path, str]] = ()
    """(path, what it is) of each path it renames into the trash: their parent directories."""
    again: str = INSTALL_AGAIN
    """How the messages end: `then <again>`."""


def install_writes(keys: Sequence[VersionKey], *, repair: bool = False) -> Writes:
    """What an install of `keys` (the versions it fetches) writes: nothing but the ref when there is
    nothing to fetch (so then only kinds are checked); the trash only on a `repair`."""
    fetch = bool(keys)
    return Writes(control=fetch, refs=fetch, staging=fetch, trash=fetch and repair, keys=tuple(keys))


def removal_writes(
    command: str, removes: Iterable[tuple[Path, str]] = (), *, refs: bool = False, dry_run: bool = False
) -> Writes:
    """What `gc` or `release` (`command`) writes: the writer lock (in the control dir), the trash, the
    parent dirs of the `removes` ((path, what it is), renamed into the trash) and, for a release, the
    refs (it drops one). A `dry_run` writes the lock alone."""
    return Writes(
        control=True,
        refs=refs and not dry_run,
        trash=not dry_run,
        removes=tuple(removes),
        again=f"run {command} again (nothing was removed)",
    )


@dataclass
class _Spot:
    path: Path
    role: str | None = None
    """The link rule's name for it (None: not one of dscache's own directories)."""
    purpose: str | None = None
    """The write rule's name for what dscache keeps there (None: not written)."""
    access: bool = False
    kinds: bool = True
    lock: bool = False
    """The writer lock: a file, whose directory's access is what counts."""


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
    """(path, role) of every place dscache keeps its own directory for `keys` (the module doc)."""
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


def _spots(cache: CachePaths, linked: Iterable[VersionKey], writes: Writes | None) -> list[_Spot]:
    """Every path either rule looks at, once, in the order of the module doc."""
    spots: dict[Path, _Spot] = {}
    for path, role in own_dirs(cache, linked):
        spots.setdefault(path, _Spot(path)).role = role
    if writes is None:
        return list(spots.values())

    def write(path: Path, purpose: str, access: bool, *, kinds: bool = True, lock: bool = False) -> None:
        spot = spots.setdefault(path, _Spot(path))
        if spot.purpose is None:
            spot.purpose, spot.access, spot.kinds, spot.lock = purpose, access, kinds, lock
        else:  # the same directory for two purposes (a version's parent, say): the stricter check
            spot.access, spot.kinds = spot.access or access, spot.kinds or kinds

    write(cache.lock_path, "its writer lock", False, lock=True)
    write(cache.control, "its control files (lock, refs, staging)", writes.control)
    write(cache.refs_dir, "its refs", writes.refs)
    write(cache.staging_root, "the staging of installs", writes.staging)
    write(cache.trash_dir, "what it removes (its trash)", writes.trash)
    for key in writes.keys:
        for path, role in _levels(cache.staging_root, key, " in staging"):  # made by dscache alone
            spots.setdefault(path, _Spot(path)).role = role
        write(cache.staging_dir(key), f"the staging of {key}", True)
        write(cache.version_dir(key).parent, f"version {key}", True, kinds=False)
    for path, what in writes.removes:
        write(path.parent, f"the removal of {what}", True, kinds=False)
    return list(spots.values())


def _link_problem(path: Path, role: str) -> str | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISLNK(st.st_mode):
        return None
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


def _why_not_writable(path: Path) -> str:
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
    except OSError:
        pass
    return f"not writable by user id {os.geteuid()}"


def _lock_problem(path: Path, again: str) -> str | None:
    """Something other than a file at the writer lock's path would hold the lock forever."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        return None
    return (
        f"{path}: {file_type(st.st_mode)}, but dscache keeps its writer lock in a file there; "
        f"move it away, then {again}"
    )


def _dir_problem(spot: _Spot, again: str) -> str | None:
    """Why dscache cannot keep `spot.purpose` in the directory `spot.path` (missing is fine: it is
    made in its nearest existing parent, which must then be writable), or None. Without `kinds`,
    something other than a directory on the way is not this rule's to name (`store.ownership`)."""
    path, at = spot.path, spot.path
    while True:
        try:
            st = os.stat(at)  # a symlink to a directory is followed, as the writes follow it
        except FileNotFoundError:
            if os.path.lexists(at):
                return (
                    f"{at}: a dangling symlink where dscache keeps {spot.purpose} in a directory; move it "
                    f"away, then {again}"
                )
            at = at.parent
            continue
        except NotADirectoryError:
            at = at.parent  # a file on the way: found (and named) one level up
            continue
        if not stat.S_ISDIR(st.st_mode):
            if not spot.kinds:
                return None
            where = "" if at == path else f" on the way to {path}"
            return (
                f"{at}: {file_type(os.lstat(at).st_mode)}{where}, but dscache keeps {spot.purpose} in a "
                f"directory there; move it away, then {again}"
            )
        if spot.access and not os.access(at, os.W_OK | os.X_OK):
            made = "" if at == path else f" (to make {path})"
            return (
                f"{at}: {_why_not_writable(at)}, and dscache writes {spot.purpose} there{made}; fix that, "
                f"then {again}"
            )
        return None


def own_path_problem(
    cache: CachePaths, linked: Iterable[VersionKey] = (), writes: Writes | None = None
) -> Problem | None:
    """The first path of `cache` either rule refuses: the link rule for the control dir, its entries
    and the levels of the `linked` versions; the write rule for what `writes` says (None: the
    command writes nothing). Raises nothing: a path that cannot be examined is left to the command."""
    again = writes.again if writes is not None else INSTALL_AGAIN
    for spot in _spots(cache, linked, writes):
        if spot.role is not None:
            line = _link_problem(spot.path, spot.role)
            if line is not None:
                return Problem(line, usage=True)
        if spot.purpose is not None:
            line = _lock_problem(spot.path, again) if spot.lock else _dir_problem(spot, again)
            if line is not None:
                return Problem(line, usage=False)
    return None


def own_link_problem(cache: CachePaths, keys: Iterable[VersionKey]) -> str | None:
    """The link rule alone (every command that reads the cache): one line naming the first symlink
    at one of dscache's own directories for `keys` and what to do, or None."""
    problem = own_path_problem(cache, keys)
    return None if problem is None else problem.line


def check_writable(cache: CachePaths, writes: Writes, linked: Iterable[VersionKey] = ()) -> None:
    """Raise NotWritableError naming the first path `own_path_problem` refuses, if there is one."""
    problem = own_path_problem(cache, linked, writes)
    if problem is not None:
        raise NotWritableError(problem.line)
