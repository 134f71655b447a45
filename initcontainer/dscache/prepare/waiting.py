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
LOG_EVERY = 30.0  # seconds between "still waiting" lines, so `kubectl logs` is never silent for long


@dataclass(frozen=True)
class WaitResult:
    """The request as last read, and what of it is still unpublished (`wanted` None: no ref yet)."""

    wanted: list[Wanted] | None
    missing: list[VersionKey]


def unpublished(cache: CachePaths, wanted: list[Wanted]) -> list[VersionKey]:
    return [w.key for w in wanted if not is_published(cache, w.key)]


def _quiet(state: WaitResult, waited: float) -> None:
    del state, waited


def wait_published(
    cache: CachePaths,
    resolve: Callable[[], list[Wanted] | None],
    wait_seconds: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    report: Callable[[WaitResult, float], None] = _quiet,
    report_every: float = LOG_EVERY,
) -> WaitResult:
    """Poll with backoff; the request is re-read each time, since a ref may move while we wait.

    `report(state, seconds waited)` is called when the wait begins and then every `report_every`
    seconds while it goes on (not when everything is there at once, nor when there is no time to wait).
    """
    start = clock()
    deadline = start + wait_seconds
    delay = POLL_FIRST
    next_report = start
    while True:
        wanted = resolve()
        missing = [] if wanted is None else unpublished(cache, wanted)
        if wanted is not None and not missing:
            return WaitResult(wanted, [])
        now = clock()
        remaining = deadline - now
        if remaining <= 0:
            return WaitResult(wanted, missing)
        if now >= next_report:
            report(WaitResult(wanted, missing), now - start)
            next_report = now + report_every
        sleep(min(delay, remaining))
        delay = min(delay * 2, POLL_MAX)
