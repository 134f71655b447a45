"""Where a publish may write: never inside the tree it packs, and no directory left behind.

A destination (`--to file://...` or `--work-dir`) inside the published tree would be packed by the next
publish of that tree (its archives, or an empty work directory, become members of the next version);
a tree inside the destination would be written into while it is packed. Both are refused before any
work starts. The work directory's missing parents are made for the publish and removed after it
(when empty), so neither a finished nor a failed publish leaves a directory it created.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def _real(path: Path) -> Path:
    """`path` with every existing component's symlinks resolved (the rest taken as written)."""
    return Path(os.path.realpath(path))


def overlap_problem(tree: Path, flag: str, other: Path) -> str | None:
    """Pure but for resolving symlinks: why `other` (given as `flag`) cannot be used next to the tree
    `tree` that is published, in one line starting with the flag; None when they do not overlap.

    Refused: `other` is `tree` or inside it, or `tree` is inside `other`.
    """
    real_tree, real_other = _real(tree), _real(other)
    if real_other == real_tree or real_other.is_relative_to(real_tree):
        return (
            f"{flag} {other}: DIR {tree} or inside it, so the next publish of DIR would pack it; "
            "choose a directory outside DIR"
        )
    if real_tree.is_relative_to(real_other):
        return (
            f"{flag} {other}: DIR {tree} is inside it, so the publish would write into the tree it packs; "
            "choose a directory outside DIR"
        )
    return None


def missing_dirs(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, outermost first."""
    missing: list[Path] = []
    for candidate in (path.absolute(), *path.absolute().parents):
        if os.path.lexists(candidate):
            break
        missing.append(candidate)
    return missing[::-1]


@contextlib.contextmanager
def made_dirs(path: Path) -> Iterator[Path]:
    """Make `path` with its missing parents for the duration of the block, then remove the ones this
    made, innermost first, as long as they are empty (what another process put there stays)."""
    created = missing_dirs(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        yield path
    finally:
        for made in reversed(created):
            try:
                made.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                break
