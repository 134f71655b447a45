"""Helpers the command adapters share: one-line errors, the writer lock, `--protect`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from dscache.cli import output
from dscache.cli.argtypes import seconds
from dscache.cli.exits import EXIT_FAILURE, EXIT_USAGE, exit_code
from dscache.cli.pathcheck import cache_problem, dir_problem

if TYPE_CHECKING:
    from dscache.api.spec import Source
    from dscache.store.catalog import Foreign
    from dscache.store.lock import Fence
    from dscache.store.ownpaths import Writes
    from dscache.store.paths import CachePaths

T = TypeVar("T")


def fail(message: str, code: int = EXIT_FAILURE) -> int:
    """Report `dscache: error: ...` (a JSON error object with --json) and return the exit code."""
    return output.error(message, code)


def cache_dir_problem(flag: str, path: Path, *, write: bool = False) -> str | None:
    """Why `path` (given as `flag`: --cache or --scratch) is not an existing cache (or scratch)
    directory to read (or write), else None."""
    found = cache_dir_problem_code(flag, path, write=write)
    return None if found is None else found[0]


def cache_dir_problem_code(
    flag: str, path: Path, *, write: bool = False, writes: Writes | None = None
) -> tuple[str, int] | None:
    """As `cache_dir_problem`, with the exit code; with `writes` (what a command writes there), also
    a path of dscache's own there it could not write (`store.ownpaths`: one line naming it, exit 1)."""
    what = "scratch directory" if flag == "--scratch" else "cache"
    problem = dir_problem(path, write=write or writes is not None) or cache_problem(path, what)
    if problem is None and flag == "--cache":
        from dscache.store.ownpaths import own_path_problem, ref_keys
        from dscache.store.paths import CachePaths

        cache = CachePaths(path)
        found = own_path_problem(cache, ref_keys(cache), writes)
        if found is not None and not found.usage:
            return found.line, EXIT_FAILURE
        problem = None if found is None else found.line
    return None if problem is None else (f"{flag} {problem}", EXIT_USAGE)


def source_env_problem(command: str, source: Source) -> str | None:
    """The first unusable environment variable that `command`'s remote, `source`, reads (an endpoint
    only that kind of remote reads: `dscache.cli.envvars`), as one line; else None."""
    import os

    from dscache.api.spec import SOURCE_KINDS
    from dscache.cli.envvars import source_problems

    kind = next(k for k in SOURCE_KINDS if getattr(source, k) is not None)
    s3 = source.s3
    found = source_problems(
        command,
        kind,
        os.environ,
        endpoint_set=s3 is not None and s3.endpoint is not None,
        anonymous=s3 is not None and s3.anonymous,
    )
    return found[0] if found else None


def note_foreign(foreign: Sequence[Foreign]) -> None:
    """One `dscache: ignored ...` line on stderr (unless -q) per directory below a cache that is not one
    of its versions (a cache nested in it, a stray version record): status, verify and gc skip them."""
    for item in foreign:
        output.info(item.note())


def run_locked(
    cache_dir: Path, lock_timeout: float, action: Callable[[CachePaths, Fence], T], writes: Writes
) -> T | int:
    """`action(cache, fence)` under the writer lock; an int is the exit code of a failure already printed.

    `fence` is the lock's: the action calls it before each change to the cache. A path that is not a
    cache directory (a file, a foreign directory, no permission), or where the command cannot write
    what `writes` says (the lock, the trash, the refs), is refused first, so nothing (not even the lock
    file) is written into it.
    """
    from dscache.errors import DscacheError
    from dscache.store.lock import LockError, WriterLock
    from dscache.store.paths import CachePaths

    found = cache_dir_problem_code("--cache", cache_dir, writes=writes)
    if found is not None:
        return fail(*found)
    cache = CachePaths(cache_dir)
    try:
        with WriterLock(cache.lock_path, timeout=lock_timeout) as lock:
            return action(cache, lock.fence)
    except (LockError, DscacheError) as err:  # e.g. an unreadable ref, an unknown --protect
        return fail(str(err), exit_code(err))
    except OSError as err:  # e.g. a read-only volume: the version or staging dir cannot be moved
        return fail(f"{err.filename or cache_dir}: {err.strerror}")


def add_lock_timeout_argument(p: argparse.ArgumentParser) -> None:
    """`--lock-timeout SECONDS`: how long to wait for another writer (>= 0; inf waits forever)."""
    p.add_argument(
        "--lock-timeout",
        type=seconds,
        default=600.0,
        metavar="SECONDS",
        help="seconds to wait for another writer (default 600; inf: no limit)",
    )


def add_protect_argument(p: argparse.ArgumentParser) -> None:
    """`--protect DT/SRC=VER` (repeatable): versions running pods use, never removed."""
    p.add_argument(
        "--protect",
        action="append",
        default=[],
        metavar="DT/SRC=VER",
        help="also keep this version (e.g. a running pod's); an error if not installed; repeatable",
    )
    p.add_argument(
        "--in-use",
        action="append",
        default=[],
        metavar="DT/SRC=VER",
        help="as --protect, but ignored if not installed (the operator: versions pods link); repeatable",
    )
