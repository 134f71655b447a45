"""molmospaces-resources compatibility, in one place: its file names, and the files its readers need.

Remote side (read by the `archives` layout, written by `dscache publish`): per version,
`mjthor_resource_file_to_size_mb.json` {archive: size in MiB} and `mjthor_resources_combined_meta.json.gz`
(path tries). Cache side, so a cache is a valid pre-populated cache for molmospaces-resources readers
with `cache_lock=False`: a `.<archive>_complete_extract` flag per archive in each version (listed in
its inventory) and `<cache>/mjthor_data_type_to_source_to_versions.json` naming the installed versions,
updated by the installer and by gc (under the writer lock). Names are those of molmospaces-resources
0.0.2 (`constants.py`, `_complete_extract_flag`).
"""

from __future__ import annotations

from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.atomic import read_json, write_json_atomic
from dscache.store.paths import CachePaths

MOLMO_REMOTE_MANIFEST = "mjthor_resource_file_to_size_mb.json"
MOLMO_COMBINED_TRIES = "mjthor_resources_combined_meta.json.gz"
MOLMO_LOCAL_MANIFEST = "mjthor_data_type_to_source_to_versions.json"


def molmo_extract_flag(archive: str) -> str:
    """Name of the per-archive flag file molmospaces-resources checks (`_complete_extract_flag`)."""
    return f".{archive.replace('/', '__')}_complete_extract"


def molmo_size_mb(size: int) -> float:
    """molmospaces' manifest value: size in MiB (their readers use it only for display and totals)."""
    return round(size / (1 << 20), 3)


def molmo_local_manifest(cache: CachePaths) -> Path:
    """`<cache>/mjthor_data_type_to_source_to_versions.json`."""
    return cache.root / MOLMO_LOCAL_MANIFEST


def record_molmo_version(cache: CachePaths, key: VersionKey) -> None:
    """Add the version to molmospaces' `mjthor_data_type_to_source_to_versions.json` (writer lock held)."""
    path = molmo_local_manifest(cache)
    try:
        data = read_json(path)
    except (OSError, ValueError):
        data = {}
    versions = data.setdefault(key.data_type, {}).setdefault(key.source, [])
    if key.version not in versions:
        versions.append(key.version)
        write_json_atomic(path, data)


def forget_molmo_version(cache: CachePaths, key: VersionKey) -> None:
    """Remove a deleted version from molmospaces' local manifest (writer lock held)."""
    path = molmo_local_manifest(cache)
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return
    versions = data.get(key.data_type, {}).get(key.source, [])
    if key.version in versions:
        versions.remove(key.version)
        write_json_atomic(path, data)
