"""`logging` records of the `dscache.*` loggers (e.g. `dscache.remotes` retry warnings) as CLI lines
with a level: `dscache: warning: ...`, `dscache: debug: ...`, `dscache: ...` for info.

Kept apart from `dscache.cli.output` because importing `logging` costs ~6 ms, which `dscache prepare` (the
init container, which logs nothing through `logging`) does not pay.
"""

from __future__ import annotations

import logging
import sys

from dscache.cli import output

LOGGER = "dscache"


class CliHandler(logging.Handler):
    """Writes each record as one prefixed line to the current `sys.stderr`; a closed stderr is ignored."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string must not break the command
            message = str(record.msg)
        level = "" if record.levelno == logging.INFO else record.levelname.lower()
        output.write_line(
            sys.stderr, f"{output.PREFIX}: {level}: {message}" if level else f"dscache: {message}"
        )


def setup_logging(verbosity: int) -> None:
    """Route the `dscache` loggers to stderr: warnings and errors always, info by default, debug with
    -v. Idempotent (tests run many commands in one process); worker processes forked later inherit it."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, CliHandler) for h in logger.handlers):
        logger.addHandler(CliHandler())
    logger.setLevel(logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO)
