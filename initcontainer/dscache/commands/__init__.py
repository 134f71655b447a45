"""Subcommands of the `dscache` CLI: thin adapters from argparse to the library (one module each)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from dscache import output
from dscache.argtypes import seconds
from dscache.output import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from dscache.pathcheck import cache_problem, dir_problem

if TYPE_CHECKING:
    from dscache.cachepaths import CachePaths

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_lock_timeout_argument",
    "add_protect_argument",
    "cache_dir_problem",
    "fail",
    "run_locked",
]

T = TypeVar("T")


def fail(message: str, code: int = EXIT_FAILURE) -> int:
    """Report `dscache: error: ...` (a JSON error object with --json) and return the exit code."""
    return output.error(message, code)


def cache_dir_problem(flag: str, path: Path, *, write: bool = False) -> str | None:
    """Why `path` (given as `flag`: --cache or --scratch) is not an existing cache (or scratch)
    directory to read (or write), else None."""
    what = "scratch directory" if flag == "--scratch" else "cache"
    problem = dir_problem(path, write=write) or cache_problem(path, what)
    return None if problem is None else f"{flag} {problem}"


def run_locked(cache_dir: Path, lock_timeout: float, action: Callable[[CachePaths], T]) -> T | int:
    """`action` on the cache under the writer lock; an int is the exit code of a failure already printed.

    A path that is not a cache directory (a file, a foreign directory, no permission) is refused first,
    so nothing (not even the lock file) is written into it."""
    from dscache.cachepaths import CachePaths
    from dscache.lock import LockTimeoutError, WriterLock

    problem = cache_dir_problem("--cache", cache_dir, write=True)
    if problem is not None:
        return fail(problem, EXIT_USAGE)
    cache = CachePaths(cache_dir)
    try:
        with WriterLock(cache.lock_path, timeout=lock_timeout):
            return action(cache)
    except LockTimeoutError as err:
        return fail(str(err))


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
        help="also keep this version (e.g. in use by a running pod); repeatable",
    )
