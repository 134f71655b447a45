"""Where everything lives on a node-local scratch dir, as pure functions.

```
<scratch>/<dt>/<src>/<ver>/                      a complete copy (with the version's completion record)
<scratch>/.dscache/staging/<host>.<pid>.<token>/ one process's private copy in progress
<scratch>/.dscache/trash/<token>/                a copy being deleted (renamed here first)
<scratch>/.dscache/locks/<version tag>           empty file; a copier's flock (copyclaim.py)
<scratch>/.dscache/used/<dt>/<src,with,commas>/<ver>   empty file; its mtime is the version's last use
<scratch>/.dscache/holds/<id>.json               the copies one links directory points at (holds.py)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.paths import VersionTree


@dataclass(frozen=True)
class ScratchPaths(VersionTree):
    """Paths of one scratch dir rooted at `root`."""

    @property
    def used_root(self) -> Path:
        return self.control / "used"

    @property
    def holds_root(self) -> Path:
        return self.control / "holds"

    def used_marker(self, key: VersionKey) -> Path:
        """One flat name per source (',' never occurs in names), so markers never nest into each other."""
        return self.used_root / key.data_type / key.source.replace("/", ",") / key.version


def key_from_marker(rel_parts: tuple[str, str, str]) -> VersionKey:
    """Invert `used_marker`: (data type, encoded source, version) -> key."""
    data_type, source, version = rel_parts
    return VersionKey(data_type, source.replace(",", "/"), version)
