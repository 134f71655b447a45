"""What installs left in staging (`<cache>/.dscache/staging/<dt>/<src...>/<ver>/`): per version, its
bytes, finished items, partial files and when it was last touched.

A version's staging dir is recognised by what the installer keeps in it (`install/staging.py`):
`archives/` (extractions and their `.done.json` records), `files/` (finished files), `parts/` and
`pins/` (partial files and what they are of), `tree/` (a version being assembled). It sits at least
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

MARKERS = frozenset({"archives", "files", "parts", "pins", "tree"})
"""Subdirs the installer makes in a version's staging dir."""
MIN_DEPTH = 3


@dataclass(frozen=True)
class Stage:
    """One version's staging dir: `rel` (`<dt>/<src...>/<ver>`), the apparent `bytes` of its data (not
    of its pin and done records), `items` finished (archives with their done record, files in
    `files/`), `partial` files in `parts/`, `touched` (newest mtime of its top-level entries, seconds
    since the epoch), and whether its version is `published` already (then nothing resumes it)."""

    path: Path
    rel: str
    bytes: int
    items: int
    partial: int
    touched: float
    published: bool

    def age(self, now: float) -> float:
        return max(now - self.touched, 0.0)


def _tally(root: Path) -> tuple[int, int, int]:
    """(bytes of the staged data below `root`: every regular file but pin and done records, finished
    items, partial files)."""
    total = items = partial = 0
    for path, st in regular_files([root]):
        top = os.path.relpath(path, root).split(os.sep)[0]
        done_record = top == "archives" and path.endswith(".done.json")
        if top != "pins" and not done_record:
            total += st.st_size
        if top == "files":
            items += 1
        elif top == "parts":
            partial += 1
        elif done_record:
            items += 1
    return total, items, partial


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
            total, items, partial = _tally(here)
            published = (cache.root / rel / COMPLETE_RECORD).is_file()
            stages.append(Stage(here, rel, total, items, partial, _touched(here), published))
            continue
        stack.extend((d, depth + 1) for d in subdirs)
    return sorted(stages, key=lambda s: s.rel)
