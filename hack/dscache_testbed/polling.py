"""Waiting on the test bed from the benchmarks that drive it (bench/bench_load.py, bench_pod_start.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait(what: str, fn: Callable[[], Any], timeout: float = 120, every: float = 0.2) -> Any:
    """Call `fn` every `every` seconds until it returns something truthy, and return that.

    Raises SystemExit (one line naming `what`: the benchmark stops there) after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")
