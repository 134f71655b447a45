"""What each published version's items are (`.dscache-items.json`), and the index of those items by
digest that a later install shares bytes from.

The items record is written into a version before it is published (`install/commit.py`), so it is
as immutable as the version; the index is rebuilt from the records of the published versions at the
start of every install and never kept anywhere else, so no mutable state can make an install link
bytes that are not what a record says. Shape (schema 1):

```
{"schema": 1, "layout": "files" | "archives",
 "items": {NAME: {"size": BYTES, "sha256": HEX | null, "md5": HEX | null,
                  "extracted": {"files": {PATH: BYTES}, "links": {PATH: TARGET}, "dirs": [PATH],
                                "executable": [PATH], "fileSha256": {PATH: HEX}}}}}
```

NAME is a file's path in the version (`files` layout) or an archive's name (`archives` layout). The
digests are those of the bytes that were transferred, computed while they streamed (sha256 always,
md5 when the remote vouched for one and no sha256 was published or vouched, see
`install.digests.wanted`), never what a listing claimed. `extracted` (archives only) is what the
archive put into the version, with the sha256 of each file's bytes as extracted (absent in records of
an older dscache); it is left out when a later archive replaced one of its files or
symlinks, since the version then no longer holds the whole archive's tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dscache.api.names import VersionKey
from dscache.store.catalog import find_published
from dscache.store.paths import ITEMS, CachePaths

ITEMS_SCHEMA = 1
SHARED_DIGESTS = ("sha256", "md5")
"""Algorithms an item is looked up by, strongest first."""


@dataclass(frozen=True)
class PublishedItem:
    """One item of a published version: where its bytes are and what they are."""

    version: VersionKey
    root: Path
    """The published version's directory."""
    name: str
    size: int
    sha256: str | None
    md5: str | None
    extracted: Mapping[str, Any] | None
    """The archive's tree in the version (archives layout, when the version holds all of it)."""

    def digest(self, algorithm: str) -> str | None:
        return self.sha256 if algorithm == "sha256" else self.md5 if algorithm == "md5" else None


def items_record(layout: str, items: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Pure: the JSON document of a version's items record (see the module docstring)."""
    return {"schema": ITEMS_SCHEMA, "layout": layout, "items": dict(items)}


def read_items(key: VersionKey, root: Path) -> tuple[str, list[PublishedItem]]:
    """(layout, items) of the published version `key` at `root`; ("", []) when it has no readable
    items record (installed by an older dscache, or damaged): such a version shares nothing."""
    try:
        with open(root / ITEMS, "rb") as fh:
            doc = json.loads(fh.read())
        layout = str(doc["layout"])
        items = [
            PublishedItem(
                key,
                root,
                str(name),
                int(entry["size"]),
                entry.get("sha256"),
                entry.get("md5"),
                entry.get("extracted"),
            )
            for name, entry in dict(doc["items"]).items()
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "", []
    return layout, items


class ShareIndex:
    """Items of published versions by (layout, algorithm, digest, size)."""

    def __init__(self, entries: Iterable[tuple[str, PublishedItem]] = ()) -> None:
        self._by: dict[tuple[str, str, str, int], list[PublishedItem]] = {}
        for layout, item in entries:
            for algorithm in SHARED_DIGESTS:
                digest = item.digest(algorithm)
                if digest:
                    self._by.setdefault((layout, algorithm, digest.lower(), item.size), []).append(item)

    @classmethod
    def load(cls, cache: CachePaths, exclude: Iterable[VersionKey] = ()) -> ShareIndex:
        """The index of every version published in `cache` now but those in `exclude` (a repair's:
        their damaged items must not be linked back); reads each one's items record."""
        entries: list[tuple[str, PublishedItem]] = []
        skip = set(exclude)
        for record in (r for r in find_published(cache) if r.key not in skip):
            layout, items = read_items(record.key, cache.version_dir(record.key))
            entries += [(layout, item) for item in items]
        return cls(entries)

    def candidates(
        self, layout: str, stated: Iterable[tuple[str, str]], size: int | None
    ) -> list[PublishedItem]:
        """Pure: published items of `layout` with `size` bytes and one of the `stated` digests
        (algorithm, hex), strongest algorithm first; none without a size or a digest."""
        if size is None:
            return []
        found: list[PublishedItem] = []
        given = dict(stated)
        for algorithm in SHARED_DIGESTS:
            if given.get(algorithm):
                for item in self._by.get((layout, algorithm, given[algorithm].lower(), size), []):
                    if item not in found:
                        found.append(item)
        return found
