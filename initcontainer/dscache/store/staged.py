"""What installs left in staging (`<cache>/.dscache/staging/<dt>/<src...>/<ver>/`): per version, its
bytes, finished items, partial files (and which a rerun can resume) and when it was last touched.
`dscache status` shows it; `install --dry-run` shows the same count for the versions it would install
beside what a rerun reuses, checked against the remote.

A version's staging dir is recognised by what the installer keeps in it (`install/staging.py`):
`archives/` (extractions and their `.done.json` records), `files/` (finished files), `parts/` and
`pins/` (partial files and what they are of), `digests/` (the digests of finished files), `tree/` (a
version being assembled). It sits at least
three levels below the staging root (`<dt>/<src>/<ver>`, a source may hold more segments). A rerun of
the install resumes it (finished items are not fetched again, a partial file continues from its
bytes); `gc` removes it once untouched for `--staging-max-age` or once its version is published.
Costs one `lstat` per staged file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dscache.store.fsops import regular_files
from dscache.store.paths import COMPLETE_RECORD, CachePaths

MARKERS = frozenset({"archives", "digests", "files", "parts", "pins", "tree"})
"""Subdirs the installer makes in a version's staging dir."""
MIN_DEPTH = 3


@dataclass(frozen=True)
class Tally:
    """What one version's staging dir holds, in bytes of file content (pin, digest and done records
    not counted; `disk`: what all of it takes on disk), by what a rerun of its install does with it:

    - `items` finished (a file in `files/`, an archive's extraction with its done record), of
      `item_bytes`: kept, not fetched again (if the remote still lists them at that size);
    - `partial` files in `parts/`, of `partial_bytes`; `resumable` of them, of `resumable_bytes`,
      have a pin record: a rerun continues the one holding most of an object, if the remote still
      names that very object. A partial without a pin record (a file of at most 256 KiB, fetched
      again whole) is not resumed;
    - the rest (`leftover_bytes`: unfinished archive extractions, a tree being assembled, partials
      without a record) is not reused: a rerun fetches it again and `gc` removes it.

    `install --dry-run` reports `bytes` as well, beside what it checked against the remote."""

    bytes: int = 0
    items: int = 0
    item_bytes: int = 0
    partial: int = 0
    partial_bytes: int = 0
    resumable: int = 0
    resumable_bytes: int = 0
    disk: int = 0
    """What the staging dir's files take on disk (allocated blocks, as `du` counts, records too)."""

    @property
    def leftover_bytes(self) -> int:
        return self.bytes - self.item_bytes - self.resumable_bytes


def version_of_rel(rel: str) -> str:
    """Pure: a staging dir's path below the staging root (`<dt>/<src...>/<ver>`, at least three
    segments) as a version, `DT/SRC=VER`: `objects/objaverse/part1/v3` -> `objects/objaverse/part1=v3`."""
    head, _, version = rel.rpartition("/")
    return f"{head}={version}"


@dataclass(frozen=True)
class Stage:
    """One version's staging dir: `rel` (`<dt>/<src...>/<ver>`), what it holds (`tally`), `touched`
    (newest mtime of its top-level entries, seconds since the epoch), and whether its version is
    `published` already (then nothing resumes it)."""

    path: Path
    rel: str
    tally: Tally
    touched: float
    published: bool

    @property
    def bytes(self) -> int:
        return self.tally.bytes

    @property
    def version(self) -> str:
        """The version it stages, written as everywhere else: `DT/SRC=VER`."""
        return version_of_rel(self.rel)

    def age(self, now: float) -> float:
        return max(now - self.touched, 0.0)


def tally(root: Path) -> Tally:
    """Pure but for the reads: what the staging dir `root` of one version holds (see `Tally`); an
    empty Tally for a missing dir. One `lstat` per file."""
    found = list(regular_files([root]))
    files = [(os.path.relpath(path, root).split(os.sep), st.st_size) for path, st in found]
    pins = {"/".join(parts[1:]).removesuffix(".json") for parts, _ in files if parts[0] == "pins"}
    done_dirs = {
        "/".join(parts[1:]).removesuffix(".done.json") + ".d"
        for parts, _ in files
        if parts[0] == "archives" and parts[-1].endswith(".done.json")
    }
    total = items = item_bytes = partial = partial_bytes = resumable = resumable_bytes = 0
    for parts, size in files:
        top, rel = parts[0], "/".join(parts[1:])
        if top in ("pins", "digests") or (top == "archives" and rel.endswith(".done.json")):
            items += top == "archives"
            continue
        total += size
        if top == "files":
            items += 1
            item_bytes += size
        elif top == "parts":
            partial += 1
            partial_bytes += size
            if rel in pins:
                resumable += 1
                resumable_bytes += size
        elif top == "archives" and any("/".join(parts[1:n]) in done_dirs for n in range(2, len(parts))):
            item_bytes += size
    disk = sum(st.st_blocks * 512 for _path, st in found)
    return Tally(total, items, item_bytes, partial, partial_bytes, resumable, resumable_bytes, disk)


def _touched(stage: Path) -> float:
    try:
        with os.scandir(stage) as it:
            return max((e.stat(follow_symlinks=False).st_mtime for e in it), default=0.0)
    except OSError:
        return 0.0


def find_stages(cache: CachePaths) -> list[Stage]:
    """Every version's staging dir below `cache`, sorted by `rel`; [] without staging."""
    stages: list[Stage] = []
    root = cache.staging_root
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        here, depth = stack.pop()
        try:
            with os.scandir(here) as it:
                subdirs = [Path(e.path) for e in it if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        if depth >= MIN_DEPTH and any(d.name in MARKERS for d in subdirs):
            rel = here.relative_to(root).as_posix()
            published = (cache.root / rel / COMPLETE_RECORD).is_file()
            stages.append(Stage(here, rel, tally(here), _touched(here), published))
            continue
        stack.extend((d, depth + 1) for d in subdirs)
    return sorted(stages, key=lambda s: s.rel)
