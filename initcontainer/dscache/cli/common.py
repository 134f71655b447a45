"""Helpers the command adapters share: one-line errors, the writer lock, `--protect`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from dscache.cli.exits import EXIT_FAILURE, exit_code

if TYPE_CHECKING:
    from dscache.store.lock import Fence
    from dscache.store.paths import CachePaths

T = TypeVar("T")


def fail(message: str, code: int = EXIT_FAILURE) -> int:
    """Print `dscache: error: ...` to stderr and return the exit code."""
    print(f"dscache: error: {message}", file=sys.stderr)
    return code


def run_locked(cache_dir: Path, lock_timeout: float, action: Callable[[CachePaths, Fence], T]) -> T | int:
    """`action(cache, fence)` under the writer lock; an int is the exit code of a failure already printed.

    `fence` is the lock's: the action calls it before each change to the cache.
    """
    from dscache.store.lock import LockError, WriterLock
    from dscache.store.paths import CachePaths

    if not cache_dir.is_dir():
        return fail(f"--cache {cache_dir}: no such directory")
    cache = CachePaths(cache_dir)
    try:
        with WriterLock(cache.lock_path, timeout=lock_timeout) as lock:
            return action(cache, lock.fence)
    except LockError as err:
        return fail(str(err), exit_code(err))
    except OSError as err:  # e.g. a read-only volume: the version or staging dir cannot be moved
        return fail(f"{err.filename or cache_dir}: {err.strerror}")


def add_protect_argument(p: argparse.ArgumentParser) -> None:
    """`--protect DT/SRC=VER` (repeatable): versions running pods use, never removed."""
    p.add_argument(
        "--protect",
        action="append",
        default=[],
        metavar="DT/SRC=VER",
        help="also keep this version (e.g. in use by a running pod); repeatable",
    )
