"""A writer that waits for the cache writer lock says so after about a second: the lock, its holder
(pid, host, command, since when) and the takeover rule (h6-input, finding 5)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dscache.cli.cli_helpers import run_process

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dscache.store.lock import WriterLock
    shown, cache, seconds = sys.argv[1:]
    sys.argv = ["dscache", "install", "--cache", shown, "--source", "https://me:secret@example.com/r"]
    with WriterLock(Path(cache) / ".dscache" / "writer.lock"):
        print("held", flush=True)
        time.sleep(float(seconds))
    """
)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A cache whose writer lock another process holds for 3 s; yields the cache and its pid."""
    cache = tmp_path / "c"
    cache.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, "C", str(cache), "3"], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    yield cache, proc.pid
    proc.wait(timeout=30)


def test_a_waiting_gc_names_the_lock_the_holder_and_the_takeover_rule(held: tuple[Path, int]) -> None:
    cache, pid = held
    result = run_process("gc", "--cache", str(cache), "--keep", "1")
    assert result.code == 0
    waiting = [line for line in result.err.splitlines() if "waiting" in line]
    assert len(waiting) == 1, result.err
    line = waiting[0]
    assert line.startswith(
        f"dscache: waiting for the cache writer lock {cache}/.dscache/writer.lock, held by"
    )
    assert f"pid={pid} " in line
    assert "command='dscache install --cache C --source https://***@example.com/r'" in line
    assert re.search(r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", line)
    assert "taken over when its holder's heartbeat stops for 60s" in line
    assert "secret" not in result.err


def test_quiet_says_nothing_while_waiting(held: tuple[Path, int]) -> None:
    cache, _ = held
    result = run_process("gc", "-q", "--cache", str(cache), "--keep", "1")
    assert (result.code, result.err) == (0, "")
