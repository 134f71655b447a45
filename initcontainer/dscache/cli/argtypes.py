"""Argument types for the numeric flags: each refuses what is meaningless for it (negative, NaN, an
infinity where none makes sense, out of range) with a message argparse turns into a usage error.

Standard library only (used by `dscache prepare`).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from dscache.api.sizes import parse_size


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    return value


def path_arg(text: str) -> Path:
    """A file or directory path; an empty one is refused (`Path('')` would quietly mean the current
    directory, so `--cache ''` would publish into wherever the command runs)."""
    if not text:
        raise argparse.ArgumentTypeError("empty path: give a directory or file (. for the current one)")
    return Path(text)


def layout_arg(text: str) -> str:
    """`--layout`: `Archives` or `Files` in any case (`files`, as flags usually are, or `Files`, as the
    manifest spells it), returned as the manifest spells it; anything else is returned as given, for
    argparse's `choices` to refuse."""
    return {"archives": "Archives", "files": "Files"}.get(text.lower(), text)


def seconds(text: str) -> float:
    """A duration in seconds: >= 0; `inf` means without limit (wait forever, never expire)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative: give seconds >= 0 (or inf for no limit)")
    return value


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An int in [low, high] (no upper bound when high is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: must be {bounds}")
        return value

    parse.__name__ = "integer"
    return parse


def size(minimum: int = 0) -> Callable[[str], int]:
    """A byte size (a Kubernetes quantity, see `dscache.api.sizes`) of at least `minimum` bytes."""

    def parse(text: str) -> int:
        try:
            value = parse_size(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"size {text!r} must be at least {minimum} byte(s)")
        return value

    parse.__name__ = "size"
    return parse
