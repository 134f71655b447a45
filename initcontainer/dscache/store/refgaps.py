"""Refs that name versions that are not published: one rule for `verify`, `status` and `prepare`.

An install writes a ref last, after publishing every version it names (`install/pipeline.py`), and
`gc` never removes a version a ref names, so a ref naming an unpublished version means the version's
directory was removed by hand (or its completion record was), unless an install is publishing it
again right now. Such a ref would make every `prepare --ref` wait its whole `--wait` for nothing.

"Being installed" is judged without locks, as readers do: the version has a staging directory
(`<cache>/.dscache/staging/<dt>/<src>/<ver>`, made by the install that fetches it and renamed away
when it is published), or the writer lock's marker exists (an install runs, and may be about to make
that directory). A marker or staging left by an installer that died keeps the answer "being
installed": a reader cannot tell a dead holder on another node from a live one (`store/lock.py`), so
it keeps waiting, as it did before this rule. Standard library only (`prepare` imports it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dscache.api.names import VersionKey
from dscache.errors import DscacheError
from dscache.store.paths import CachePaths
from dscache.store.records import Ref, is_published


class RefGapError(DscacheError):
    """A ref names a version that is neither published nor being installed (exit code 1)."""


@dataclass(frozen=True)
class RefGap:
    """A version `ref` names that is not published; `installing`: an install may publish it soon."""

    ref: str
    key: VersionKey
    installing: bool

    @property
    def message(self) -> str:
        """E.g. `ref team.train names scenes/ithor=7: not published`, and what to do about it."""
        head = f"ref {self.ref} names {self.key}: not published"
        if self.installing:
            return f"{head} (an install in progress may publish it)"
        return (
            f"{head}; install it again (dscache install -f FILE, or --source ... --version {self.key} "
            f"--ref {self.ref}) or drop the ref (dscache release --ref {self.ref})"
        )


def being_installed(cache: CachePaths, key: VersionKey) -> bool:
    """Whether an install may be publishing `key` (module docstring): its staging dir or the writer
    lock's marker exists."""
    return cache.staging_dir(key).is_dir() or cache.lock_path.exists()


def ref_gaps(cache: CachePaths, refs: Iterable[Ref]) -> list[RefGap]:
    """The versions the `refs` name that are not published, in ref and version order. A version found
    unpublished and not being installed is checked once more, since an install publishes it (staging
    renamed away) before it lets go of the lock."""
    gaps: list[RefGap] = []
    for ref in refs:
        for entry in ref.versions:
            if is_published(cache, entry.key):
                continue
            installing = being_installed(cache, entry.key)
            if installing or not is_published(cache, entry.key):
                gaps.append(RefGap(ref.name, entry.key, installing))
    return gaps


def refuse_gaps(cache: CachePaths, ref: Ref) -> None:
    """Raise RefGapError naming the first version `ref` names that is neither published nor being
    installed (`prepare --ref`: nothing would ever publish it)."""
    stranded = [g for g in ref_gaps(cache, [ref]) if not g.installing]
    if stranded:
        raise RefGapError(stranded[0].message)
