"""The command line's exit codes, and the one mapping from errors to them.

0 ok, 1 failure, 2 usage or validation error, 3 timed out waiting (prepare), 130 interrupted, 141
stdout closed early. Every command returns these; an error that reaches `exit_code` is classified by
its kind (`dscache.errors`), so a new error class gets the right code by choosing its base.
"""

from __future__ import annotations

from dscache.errors import InvalidInputError, WaitTimeoutError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a tool killed by a closed pipe (`yes | head -1`)."""

_BY_KIND: tuple[tuple[type[BaseException], int], ...] = (
    (InvalidInputError, EXIT_USAGE),
    (WaitTimeoutError, EXIT_TIMEOUT),
    (KeyboardInterrupt, EXIT_INTERRUPTED),
)


def exit_code(err: BaseException) -> int:
    """The exit code for `err`: by its kind (first match above), else 1."""
    return next((code for kind, code in _BY_KIND if isinstance(err, kind)), EXIT_FAILURE)
