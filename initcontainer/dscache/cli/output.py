"""What the CLI says besides its results: one prefix (`dscache: error: ...`, `dscache: warning: ...`),
`-q`/`-v`, errors as JSON in `--json` mode, and a reader that went away (closed stdout).

`-q` keeps warnings, errors and what a command was asked to show (tables, plans, JSON, exports); it
drops progress, `dscache: ...` notes and the summary lines of commands that change something.

Standard library only, and no `logging`: `dscache prepare` starts in every training pod and uses this
module; the commands that talk to remotes route `logging` records here with `dscache.cli.logsetup`.

Messages are written to `sys.stdout`/`sys.stderr` as they are at call time, so tests can capture them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from dscache.cli.exits import EXIT_FAILURE

PREFIX = "dscache"


@dataclass
class Mode:
    """How this process reports: `json` (errors as one JSON object on stdout) and a verbosity
    (-1 with -q: warnings and errors only; 0 by default; 1 with -v: also debug lines)."""

    json: bool = False
    verbosity: int = 0


MODE = Mode()


def configure(*, json_errors: bool, verbosity: int) -> None:
    """Set the reporting mode of this process (the CLI does it once per command)."""
    MODE.json = json_errors
    MODE.verbosity = verbosity


def write_line(stream: TextIO, text: str) -> bool:
    """Write one line and flush; False (and nothing raised) when the reader has gone."""
    try:
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):  # EPIPE, EIO, or a stream already closed
        return False
    return True


def _say(level: str, message: str) -> None:
    head = f"{PREFIX}: {level}: " if level else f"{PREFIX}: "
    write_line(sys.stderr, head + message)


def error(message: str, code: int = EXIT_FAILURE) -> int:
    """Report an error and return `code`, the exit code. In `--json` mode it is one JSON object on
    stdout, shaped like install's `error` event: `{"event": "error", "time", "message", "exitCode"}`."""
    if MODE.json:
        event = {"event": "error", "time": round(time.time(), 3), "message": message, "exitCode": code}
        write_line(sys.stdout, json.dumps(event))
    else:
        _say("error", message)
    return code


def warning(message: str) -> None:
    """`dscache: warning: ...` on stderr (shown even with -q)."""
    _say("warning", message)


def info(message: str) -> None:
    """`dscache: ...` on stderr, unless -q."""
    if MODE.verbosity >= 0:
        _say("", message)


def summary(text: str) -> None:
    """A line saying what a command did (`published ...`, `removed ...`) on stdout, unless -q.

    Not for what a command was asked to show (a status table, a dry run's plan, `--json` documents,
    prepare's exports): those are its result and are printed whatever the verbosity."""
    if MODE.verbosity >= 0:
        write_line(sys.stdout, text)


def debug(message: str) -> None:
    """`dscache: debug: ...` on stderr, with -v."""
    if MODE.verbosity > 0:
        _say("debug", message)


def is_broken_pipe(err: BaseException) -> bool:
    return isinstance(err, BrokenPipeError) or (isinstance(err, OSError) and err.errno == 32)


def discard_stdout() -> None:
    """After a write to a closed pipe: send fd 1 to /dev/null, so that buffered output and the final
    flush are dropped quietly instead of failing again (what the Python docs advise for SIGPIPE)."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):  # not a real file (captured in tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
