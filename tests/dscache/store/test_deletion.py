"""Which refusal a partial deletion reports (the pure part of `dscache.store.deletion`)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from dscache.store.deletion import Leftover, first_refusal


def _err(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def test_nfs_first_run_names_the_directory_that_holds_the_open_file() -> None:
    # On NFS the first unlink of an open file succeeds (it becomes .nfsXXXX, unseen by the listing
    # already made), so only the directories holding it refuse, deepest first.
    top = Path("/c/.dscache/trash/v1.ab")
    refusals = [
        (f"{top}/a/b", _err(errno.ENOTEMPTY)),
        (f"{top}/a", _err(errno.ENOTEMPTY)),
        (str(top), _err(errno.ENOTEMPTY)),
    ]
    assert first_refusal(top, refusals) == Leftover(top, top / "a" / "b", "Directory not empty")


def test_the_file_that_refused_beats_the_directories_it_kept() -> None:
    top = Path("/c/.dscache/trash/v1.ab")
    refusals = [(f"{top}/a/.nfs0001", _err(errno.EBUSY)), (f"{top}/a", _err(errno.ENOTEMPTY))]
    leftover = first_refusal(top, refusals)
    assert leftover == Leftover(top, top / "a" / ".nfs0001", "Device or resource busy")
    assert leftover is not None and leftover.describe(Path("/c")) == (
        ".dscache/trash/v1.ab is left for a later run: "
        ".dscache/trash/v1.ab/a/.nfs0001: Device or resource busy"
    )


def test_nothing_refused_is_nothing_left() -> None:
    assert first_refusal(Path("/c/x"), []) is None
