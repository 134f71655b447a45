"""Where everything lives on the cache volume (docs/architecture.md, "The cache volume"); pure.

```
<cache>/<dt>/<src>/<ver>/                         published version, read-only
<cache>/<dt>/<src>/<ver>/.dscache-complete.json   completion record (summary)
<cache>/<dt>/<src>/<ver>/.dscache-inventory.json  every file with its size (for verify)
<cache>/<dt>/<src>/<ver>/.dscache-items.json      each item's size, digests, extracted paths (sharing)
<cache>/.dscache/staging/<dt>/<src>/<ver>/        the one writer's work in progress
<cache>/.dscache/refs/<name>.json                 what a DatasetCache points at
<cache>/.dscache/trash/                           versions being deleted (renamed here first)
<cache>/.dscache/writer.lock                      the writer lock
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dscache.api.names import VersionKey, check_segment

COMPLETE_RECORD = ".dscache-complete.json"
INVENTORY = ".dscache-inventory.json"
ITEMS = ".dscache-items.json"
CONTROL_DIR = ".dscache"
METADATA_FILES = frozenset({COMPLETE_RECORD, INVENTORY, ITEMS})


@dataclass(frozen=True)
class VersionTree:
    """What the cache volume and node-local scratch share: versions at `<dt>/<src>/<ver>`, and a
    control dir with staging (work in progress) and trash (renamed away, then deleted)."""

    root: Path

    def version_dir(self, key: VersionKey) -> Path:
        return self.root / key.data_type / key.source / key.version

    def complete_record(self, key: VersionKey) -> Path:
        return self.version_dir(key) / COMPLETE_RECORD

    @property
    def control(self) -> Path:
        return self.root / CONTROL_DIR

    @property
    def staging_root(self) -> Path:
        return self.control / "staging"

    @property
    def trash_dir(self) -> Path:
        return self.control / "trash"


@dataclass(frozen=True)
class CachePaths(VersionTree):
    """Paths of one cache volume rooted at `root`."""

    def staging_dir(self, key: VersionKey) -> Path:
        return self.staging_root / key.data_type / key.source / key.version

    @property
    def refs_dir(self) -> Path:
        return self.control / "refs"

    def ref_path(self, name: str) -> Path:
        check_segment(name, "ref name")
        return self.refs_dir / f"{name}.json"

    @property
    def lock_path(self) -> Path:
        return self.control / "writer.lock"
