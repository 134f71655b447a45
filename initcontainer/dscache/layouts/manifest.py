"""The remote's per-version metadata: molmospaces manifests and the dscache manifest.

molmospaces (unchanged, read by existing buckets and HF repos):
  `mjthor_resource_file_to_size_mb.json`   {archive name: compressed size in MB (float)}
  `mjthor_resources_combined_meta.json.gz` gzip JSON {archive name: compact path trie (nested dicts)}
dscache (adds what molmospaces lacks, so installs can be verified and space checked up front):
  `dscache-manifest.json` {"schema": 1, "archives": {name: {"size", "sha256", "files", "bytes"}},
                           "files": total, "bytes": total}   (files/bytes: extracted content)

One reader of the dscache manifest for every command (`DscacheManifest.loads`, `read_dscache_manifest`):
install plans from it, publish reads the version it replaces and the manifests in place before it
removes anything, and install and `ls-remote --cache` compare present versions with it. A manifest
that is not what `dscache publish` writes (not JSON, a field missing or of another type, a digest
that is not 64 hex digits, a schema other than 1) is refused with one line naming the file's URL and
the field, e.g. `s3://b/objects/w/v1/dscache-manifest.json: archives["a_0000.tar.zst"].size is "big",
expected a whole number of bytes`: an install stops with it (exit 1); where the manifest only informs
(publish over it, the comparison of present versions) the command says it as a warning and goes on
as if the version had no dscache manifest.
"""

from __future__ import annotations

import builtins
import json
import re
from dataclasses import dataclass, field
from typing import Any

from dscache.layouts.plan import LayoutError
from dscache.remotes.base import NotFoundError, Remote

MANIFEST_SCHEMA = 1
DSCACHE_MANIFEST = "dscache-manifest.json"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_SHOWN_MAX = 60


class ManifestError(LayoutError):
    """A remote's dscache manifest that is not what publish writes; the message is one line naming the
    file and the field."""


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
    def loads(cls, raw: builtins.bytes, where: str = DSCACHE_MANIFEST) -> DscacheManifest:
        """Parse and validate the manifest `raw` read from `where` (its URL, for the message). Raises
        ManifestError (see the module docstring)."""
        try:
            data = json.loads(raw)
        except ValueError as err:  # UnicodeDecodeError too
            raise ManifestError(f"{where}: not valid JSON ({err})") from None
        except RecursionError:  # [[[[... deeper than the interpreter's stack
            raise ManifestError(f"{where}: not valid JSON (nested too deeply)") from None
        top = _object(data, where, "the top level")
        schema = top.get("schema", MANIFEST_SCHEMA)
        if type(schema) is not int or schema != MANIFEST_SCHEMA:
            raise ManifestError(f"{where}: schema is {_shown(schema)}, expected {MANIFEST_SCHEMA}")
        if "archives" not in top:
            raise ManifestError(f"{where}: archives is missing (expected an object)")
        archives: dict[str, ArchiveInfo] = {}
        for name, entry in _object(top["archives"], where, "archives").items():
            at = f"archives[{json.dumps(name)}]"
            info = _object(entry, where, at)
            sha256 = info.get("sha256")
            if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
                raise ManifestError(f"{where}: {at}.sha256 is {_shown(sha256)}, expected 64 hex digits")
            archives[name] = ArchiveInfo(
                name=name,
                size=_count(info, "size", where, at),
                sha256=sha256,
                files=_optional_count(info, "files", where, at),
                bytes=_optional_count(info, "bytes", where, at),
            )
        return cls(archives=archives, files=_count(top, "files", where), bytes=_count(top, "bytes", where))

    def dumps(self) -> builtins.bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode()


def read_dscache_manifest(remote: Remote, vdir: str) -> DscacheManifest | None:
    """The dscache manifest of the version directory `vdir` (relative to `remote`'s base), None where it
    has none. Raises ManifestError, RemoteError."""
    path = f"{vdir}/{DSCACHE_MANIFEST}"
    try:
        raw = remote.read_bytes(path)
    except NotFoundError:
        return None
    return DscacheManifest.loads(raw, f"{remote.url}/{path}")


def _shown(value: object) -> str:
    """Pure: a JSON value as the message shows it: one line, at most `_SHOWN_MAX` characters."""
    text = json.dumps(value)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."


def _object(value: object, where: str, at: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: {at} is {_shown(value)}, expected an object")
    return value


_WHAT = {"size": "a whole number of bytes", "bytes": "a whole number of bytes", "files": "a whole number"}


def _count(data: dict[str, Any], key: str, where: str, at: str = "") -> int:
    """`data[key]` (the field `at.key`), a whole number >= 0. Raises ManifestError."""
    field = f"{at}.{key}" if at else key
    if key not in data:
        raise ManifestError(f"{where}: {field} is missing (expected {_WHAT[key]})")
    value = data[key]
    if type(value) is not int or value < 0:
        raise ManifestError(f"{where}: {field} is {_shown(value)}, expected {_WHAT[key]}")
    return value


def _optional_count(data: dict[str, Any], key: str, where: str, at: str) -> int | None:
    """`_count`, or None where the field is absent or null."""
    return None if data.get(key) is None else _count(data, key, where, at)
