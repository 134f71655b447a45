"""Refuse `prepare` paths that overlap: links, scratch or env file in the cache, and the reverse.

`prepare` replaces entries under `--links` and evicts trees under `--scratch`; if either directory is
the cache, lies inside it or contains it, that would delete published versions (the cache is read
only to `prepare`). Overlap is decided on resolved paths (`os.path.realpath`, so symlinks and `..`
count) and on device + inode of every existing ancestor (so a bind mount of the same directory at two
paths counts too). A path that does not exist yet is compared through its nearest existing ancestor.
Standard library only (used by `dscache prepare`).
"""

from __future__ import annotations

import os
from pathlib import Path

from dscache.errors import InvalidInputError


class PathOverlapError(InvalidInputError):
    """Two `prepare` directories overlap; the message names both flags and what to do."""


def _chain(path: Path) -> list[tuple[int, int]]:
    """Device and inode of `path` (resolved) and of each existing ancestor, innermost first."""
    real = Path(os.path.realpath(path))
    ids = []
    for p in (real, *real.parents):
        try:
            st = os.stat(p)
        except OSError:
            continue
        ids.append((st.st_dev, st.st_ino))
    return ids


def relation(a: Path, b: Path) -> str | None:
    """How directory `a` overlaps directory `b`: "is", "is inside", "contains", or None (apart)."""
    a_chain, b_chain = _chain(a), _chain(b)
    a_exists, b_exists = os.path.exists(a), os.path.exists(b)
    if a_exists and b_exists and a_chain[0] == b_chain[0]:
        return "is"
    if b_exists and b_chain[0] in a_chain:
        return "is inside"
    if a_exists and a_chain[0] in b_chain:
        return "contains"
    real_a, real_b = os.path.realpath(a), os.path.realpath(b)
    if real_a == real_b:
        return "is"
    if real_a.startswith(real_b.rstrip(os.sep) + os.sep):
        return "is inside"
    if real_b.startswith(real_a.rstrip(os.sep) + os.sep):
        return "contains"
    return None


def check_apart(cache: Path, links: Path, scratch: Path | None, env_file: Path | None) -> None:
    """Raise `PathOverlapError` if links or scratch is, is inside or contains the cache (or each
    other), or the env file is inside the cache. Touches nothing."""
    dirs = [("--links", links, "--cache", cache)]
    if scratch is not None:
        dirs += [("--scratch", scratch, "--cache", cache), ("--links", links, "--scratch", scratch)]
    for flag, path, other_flag, other in dirs:
        how = relation(path, other)
        if how is not None:
            raise PathOverlapError(
                f"{flag} {path} {how} {other_flag} {other}: prepare would replace or delete what is "
                f"there; choose a {flag} directory apart from {other_flag}"
            )
    if env_file is not None and relation(env_file.parent, cache) in ("is", "is inside"):
        raise PathOverlapError(
            f"--env-file {env_file} is inside --cache {cache}, which prepare only reads; "
            "write it elsewhere (e.g. in --links)"
        )
