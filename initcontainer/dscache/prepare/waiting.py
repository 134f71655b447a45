"""Wait, without locks, until the requested versions are published (or a deadline passes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dscache.api.names import VersionKey
from dscache.prepare.request import Wanted
from dscache.store.paths import CachePaths
from dscache.store.records import is_published

POLL_FIRST = 0.2
POLL_MAX = 2.0


@dataclass(frozen=True)
class WaitResult:
    """The request as last read, and what of it is still unpublished (`wanted` None: no ref yet)."""

    wanted: list[Wanted] | None
    missing: list[VersionKey]


def unpublished(cache: CachePaths, wanted: list[Wanted]) -> list[VersionKey]:
    return [w.key for w in wanted if not is_published(cache, w.key)]


def wait_published(
    cache: CachePaths,
    resolve: Callable[[], list[Wanted] | None],
    wait_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> WaitResult:
    """Poll with backoff; the request is re-read each time, since a ref may move while we wait."""
    deadline = clock() + wait_seconds
    delay = POLL_FIRST
    while True:
        wanted = resolve()
        missing = [] if wanted is None else unpublished(cache, wanted)
        if wanted is not None and not missing:
            return WaitResult(wanted, [])
        remaining = deadline - clock()
        if remaining <= 0:
            return WaitResult(wanted, missing)
        sleep(min(delay, remaining))
        delay = min(delay * 2, POLL_MAX)
