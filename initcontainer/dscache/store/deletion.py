"""Deleting trees on shared volumes, leaving what cannot be deleted yet for a later run.

On NFS a file that a process on some node still holds open cannot go: unlinking it renames it to
`.nfsXXXX`, its directory then refuses `rmdir` (ENOTEMPTY) and the `.nfsXXXX` file refuses `unlink`
(EBUSY) until the file is closed. Other refusals (EPERM from an immutable file, EACCES) are just as
temporary from the deleter's point of view. `delete_tree` removes everything else and reports the first
refusal, so one busy entry never stops a gc, a release or a scratch eviction, and the next run
finishes the job. `shutil` is imported only when something is deleted: `dscache prepare` uses this
module and its warm path deletes nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Leftover:
    """`path` could not be deleted completely: `blocker` (inside it, or itself) refused with `reason`."""

    path: Path
    blocker: Path
    reason: str

    def describe(self, root: Path) -> str:
        """One line, paths relative to `root` (e.g. the cache): what is left and why."""
        return f"{_rel(self.path, root)} is left for a later run: {_rel(self.blocker, root)}: {self.reason}"

    def as_json(self, root: Path) -> dict[str, str]:
        """`{"path", "blocker", "reason"}`, paths relative to `root`."""
        return {"path": _rel(self.path, root), "blocker": _rel(self.blocker, root), "reason": self.reason}


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def delete_tree(path: Path) -> Leftover | None:
    """Delete the file or tree `path` (its directories may be read-only) as far as possible.

    Entries that refuse to go are left in place, with the directories holding them; every other entry
    is deleted. Returns None when `path` is gone (or never existed), else the refusal to report: the
    first one that is not a directory left non-empty, or else the deepest such directory. An entry that
    vanishes meanwhile (another deleter) is no refusal.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    refusals: list[tuple[str, OSError]] = []
    if not stat.S_ISDIR(mode):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            refusals.append((str(path), err))
    else:
        for dirpath, _dirs, _files in os.walk(path):
            with contextlib.suppress(OSError):  # a directory we may not chmod is reported by rmtree
                os.chmod(dirpath, 0o755)
        _rmtree(path, refusals)
    return first_refusal(path, refusals)


def _rmtree(path: Path, refusals: list[tuple[str, OSError]]) -> None:
    import shutil

    def note(failed: str, err: BaseException) -> None:
        if isinstance(err, FileNotFoundError):
            return
        if not isinstance(err, OSError):
            raise err
        refusals.append((failed, err))

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=lambda _func, failed, err: note(failed, err))
    else:
        shutil.rmtree(path, onerror=lambda _func, failed, info: note(failed, info[1]))


def first_refusal(path: Path, refusals: list[tuple[str, OSError]]) -> Leftover | None:
    """Pure: what to report of the refusals (entry, error) met deleting `path`; None if there were none.

    A refusal that is not a directory left non-empty is the cause; without one (on NFS, an open file's
    unlink succeeds as a rename to `.nfsXXXX` the listing did not see), the deepest directory is.
    """
    if not refusals:
        return None
    causes = [r for r in refusals if r[1].errno != errno.ENOTEMPTY]
    failed, err = causes[0] if causes else max(refusals, key=lambda r: r[0].count(os.sep))
    return Leftover(path, Path(failed), err.strerror or type(err).__name__)
