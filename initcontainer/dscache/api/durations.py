"""Durations as people read them, one format for every command: an install's ETA, how long ago a
scratch copy was prepared, a staging directory touched, a writer lock taken.

Two units at most, the smaller one zero-padded (`45s`, `1m01s`, `3h00m`, `2d00h`): short enough for a
table cell or a log line, exact to the second where that matters (under an hour). Standard library
only: `prepare` prints ages. Not `humanize` (4.17): its words (`a minute` for 61 s, `1 minute and 1
second`) are not the compact form the ETA already had, and importing it costs the init container
10-12 ms (`python -X importtime`, three runs), against none for these lines of arithmetic.
"""

from __future__ import annotations

import math

FUTURE_TOLERANCE = 1.0
"""Seconds a time may lie in the future and still read `0s ago` (timestamps of another clock, or a
file system's coarser one, that is barely ahead)."""


def format_duration(seconds: float) -> str:
    """Pure: a duration, e.g. `45s`, `3m05s`, `1h02m`, `2d03h`, rounded up to the second (an ETA is
    never shown shorter than it is); 0 and below: `0s`."""
    total = max(0, math.ceil(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_age(seconds: float) -> str:
    """Pure: how long ago something happened, `seconds` before now (whole seconds elapsed): `0s ago`,
    `59s ago`, `1m01s ago`, `3h00m ago`, `2d00h ago`. A time more than `FUTURE_TOLERANCE` ahead says
    so: `in the future (5m00s ahead of this clock)`."""
    if seconds <= -FUTURE_TOLERANCE:
        return f"in the future ({format_duration(-seconds)} ahead of this clock)"
    return f"{format_duration(math.floor(max(seconds, 0.0)))} ago"
