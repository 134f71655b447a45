"""One duration format for every command: an ETA, and how long ago something happened (a scratch
copy prepared, an install's staging touched, a writer lock taken)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dscache.api.durations import format_age, format_duration
from dscache.store.lock import HOLDER_SUFFIX, WriterLock

MINUTE, HOUR, DAY = 60, 3600, 86400


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s ago"),
        (0.9, "0s ago"),
        (59, "59s ago"),
        (59.99, "59s ago"),  # whole seconds elapsed: not yet a minute
        (61, "1m01s ago"),
        (61 * MINUTE, "1h01m ago"),
        (3 * HOUR, "3h00m ago"),
        (2 * DAY, "2d00h ago"),
        (2 * DAY + 5 * HOUR + 59 * MINUTE, "2d05h ago"),
        (-0.5, "0s ago"),  # a clock barely ahead
        (-300, "in the future (5m00s ahead of this clock)"),
        (-2 * DAY, "in the future (2d00h ahead of this clock)"),
    ],
)
def test_an_age_reads_the_same_everywhere(seconds: float, shown: str) -> None:
    assert format_age(seconds) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (0.2, "1s"),
        (45, "45s"),
        (185, "3m05s"),
        (3720, "1h02m"),
        (2 * DAY + 3 * HOUR, "2d03h"),
        (-4, "0s"),
    ],
)
def test_an_eta_is_rounded_up_to_the_second(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_a_waiting_writer_says_how_long_ago_the_holder_took_the_lock(tmp_path: Path) -> None:
    path = tmp_path / ".dscache" / "writer.lock"
    with WriterLock(path):
        record_path = path.with_name(path.name + HOLDER_SUFFIX)
        record = json.loads(record_path.read_bytes())
        record["sinceEpoch"] = time.time() - 3 * HOUR - 5
        record_path.write_text(json.dumps(record))
        assert WriterLock(path).describe_holder().endswith(", 3h00m ago")
