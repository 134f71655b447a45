"""One kind per path: the rule that keeps a version consistent when members or archives overlap.

A path of a version is a file, a directory or a symlink, in every archive and every member that
names it; its parents are directories. Overlaps of the same kind follow "later wins": a later member
of an archive, or a member of a later archive (archives are applied in name order), replaces a file
or a symlink; directories merge. Overlaps of different kinds are refused, naming the path and both
places: a file in one archive and a directory in another (`p` and `p/q`, in either order, or `p`
and `p/q/r`), a symlink and a directory, a file and a symlink, inside one archive or across two.
molmospaces-resources fails the later archive on the same inputs (tarfile cannot put a directory
where a file is, or the reverse) and leaves a half-extracted version; for same-kind files its later
archive wins too (when run as root; its archives extract in parallel threads, so "later" is timing).
dscache refuses conflicts before anything is published and applies archives in a fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass

FILE = "file"
DIRECTORY = "directory"
SYMLINK = "symlink"


@dataclass(frozen=True)
class Placed:
    """What made a path what it is: its kind, the archive, and the member (below it, for a parent)."""

    kind: str
    archive: str
    member: str


@dataclass(frozen=True)
class Conflict:
    """`path` is `earlier.kind` by one member and `later.kind` by a later one."""

    path: str
    earlier: Placed
    later: Placed

    def describe(self) -> str:
        """One line naming the path, both kinds and both archives (or the one archive)."""
        if self.earlier.archive == self.later.archive:
            return (
                f"{self.path!r} is a {_kind(self.earlier, self.path)} and, later in the same archive, "
                f"a {_kind(self.later, self.path)}"
            )
        return (
            f"{self.path!r} is a {_kind(self.earlier, self.path)} in {self.earlier.archive} and a "
            f"{_kind(self.later, self.path)} in {self.later.archive}"
        )


def _kind(placed: Placed, path: str) -> str:
    if placed.kind == DIRECTORY and placed.member != path:
        return f"directory (of {placed.member!r})"
    return placed.kind


class PathKinds:
    """The kind of every path placed so far, parents included as directories."""

    def __init__(self) -> None:
        self._placed: dict[str, Placed] = {}

    def get(self, path: str) -> Placed | None:
        return self._placed.get(path)

    def place(self, member: str, kind: str, archive: str) -> Conflict | None:
        """Record `member` (a normalized relative path) as `kind`, or return the conflict it makes.

        Nothing is recorded when there is a conflict.
        """
        later = Placed(kind, archive, member)
        parents = []
        parent = member.rpartition("/")[0]
        while parent:
            placed = self._placed.get(parent)
            if placed is not None:
                if placed.kind != DIRECTORY:
                    return Conflict(parent, placed, Placed(DIRECTORY, archive, member))
                break  # a directory's parents were recorded with it
            parents.append(parent)
            parent = parent.rpartition("/")[0]
        placed = self._placed.get(member)
        if placed is not None and placed.kind != kind:
            return Conflict(member, placed, later)
        for path in parents:
            self._placed[path] = Placed(DIRECTORY, archive, member)
        if placed is None or kind != DIRECTORY:
            self._placed[member] = later
        return None
