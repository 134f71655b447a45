"""The remote's per-version metadata: molmospaces manifests and the dscache manifest.

molmospaces (unchanged, read by existing buckets and HF repos):
  `mjthor_resource_file_to_size_mb.json`   {archive name: compressed size in MB (float)}
  `mjthor_resources_combined_meta.json.gz` gzip JSON {archive name: compact path trie (nested dicts)}
dscache (adds what molmospaces lacks, so installs can be verified and space checked up front):
  `dscache-manifest.json` {"schema": 1, "archives": {name: {"size", "sha256", "files", "bytes"}},
                           "files": total, "bytes": total}   (files/bytes: extracted content)
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass, field
from typing import Any

MANIFEST_SCHEMA = 1
DSCACHE_MANIFEST = "dscache-manifest.json"


@dataclass(frozen=True)
class ArchiveInfo:
    """One archive of a version, as far as the remote describes it."""

    name: str
    size: int | None = None  # compressed bytes, exact (dscache manifest) or None
    size_mb: float | None = None  # molmospaces' approximate size
    sha256: str | None = None
    files: int | None = None
    bytes: int | None = None  # extracted bytes


@dataclass
class DscacheManifest:
    """`dscache-manifest.json`: exact sizes and digests per archive."""

    archives: dict[str, ArchiveInfo] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    schema: int = MANIFEST_SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "files": self.files,
            "bytes": self.bytes,
            "archives": {
                a.name: {"size": a.size, "sha256": a.sha256, "files": a.files, "bytes": a.bytes}
                for a in sorted(self.archives.values(), key=lambda a: a.name)
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DscacheManifest:
        archives = {
            name: ArchiveInfo(
                name=name,
                size=int(v["size"]),
                sha256=v.get("sha256"),
                files=v.get("files"),
                bytes=v.get("bytes"),
            )
            for name, v in data.get("archives", {}).items()
        }
        return cls(archives=archives, files=int(data.get("files", 0)), bytes=int(data.get("bytes", 0)))

    def dumps(self) -> builtins.bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode()
