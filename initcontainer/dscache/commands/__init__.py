"""Subcommands of the `dscache` CLI: thin adapters from argparse to the library (one module each)."""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_FAILURE) -> int:
    """Print `dscache: error: ...` to stderr and return the exit code."""
    print(f"dscache: error: {message}", file=sys.stderr)
    return code
