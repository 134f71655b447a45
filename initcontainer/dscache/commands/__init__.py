"""Subcommands of the `dscache` CLI: thin adapters from argparse to the library (one module each)."""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_FAILURE) -> int:
    """Print `dscache: error: ...` to stderr and return the exit code."""
    print(f"dscache: error: {message}", file=sys.stderr)
    return code


def add_protect_argument(p: argparse.ArgumentParser) -> None:
    """`--protect DT/SRC=VER` (repeatable): versions running pods use, never removed."""
    p.add_argument(
        "--protect",
        action="append",
        default=[],
        metavar="DT/SRC=VER",
        help="also keep this version (e.g. in use by a running pod); repeatable",
    )
