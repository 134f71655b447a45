"""The `archives` layout: molmospaces `.tar.zst` archives per version, optionally with a dscache manifest.

Works unchanged against existing molmospaces buckets (S3/HTTP) and Hugging Face repos, including the HF
variant that stores the archives inside tar shards located by a parquet index.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

from dscache.api.names import VersionKey
from dscache.layouts.manifest import DSCACHE_MANIFEST, DscacheManifest
from dscache.layouts.molmospaces import MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST, molmo_extract_flag
from dscache.layouts.plan import NAME_MAX, LayoutError, VersionPlan, WorkItem
from dscache.remotes.base import NotFoundError, Remote

ARCHIVE_SUFFIX = ".tar.zst"


def parse_molmo_manifest(raw: bytes, where: str) -> dict[str, float]:
    """`{archive: size_mb}` from `mjthor_resource_file_to_size_mb.json`, validated."""
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise LayoutError(f"{where}: not valid JSON ({err})") from None
    except RecursionError:
        raise LayoutError(f"{where}: not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict) or not all(isinstance(v, int | float) for v in data.values()):
        raise LayoutError(f"{where}: expected an object mapping archive names to sizes in MB")
    for name in data:
        if not name.endswith(ARCHIVE_SUFFIX) or "/" in name or name.startswith("."):
            raise LayoutError(f"{where}: archive name {name!r} is not a plain <name>{ARCHIVE_SUFFIX}")
        if len(os.fsencode(molmo_extract_flag(name))) > NAME_MAX:
            raise LayoutError(
                f"{where}: archive name {name!r} is too long: its molmospaces flag "
                f"{molmo_extract_flag(name)!r} would exceed {NAME_MAX} bytes"
            )
    return {str(k): float(v) for k, v in data.items()}


def build_archive_plan(
    key: VersionKey,
    *,
    molmo_manifest: bytes,
    tries: bytes | None,
    dscache_manifest: bytes | None,
    locate: dict[str, tuple[str, int, int | None]] | None,
    where: str,
) -> VersionPlan:
    """Pure: the plan from the fetched metadata; `locate`: archive -> (path, offset, length) in shards.
    Raises LayoutError (ManifestError: a dscache manifest that is not what publish writes)."""
    sizes_mb = parse_molmo_manifest(molmo_manifest, f"{where}/{MOLMO_REMOTE_MANIFEST}")
    exact = (
        DscacheManifest.loads(dscache_manifest, f"{where}/{DSCACHE_MANIFEST}")
        if dscache_manifest is not None
        else None
    )
    items: list[WorkItem] = []
    for name in sorted(sizes_mb):
        info = exact.archives.get(name) if exact else None
        if exact is not None and info is None:
            raise LayoutError(f"{where}/{DSCACHE_MANIFEST}: no entry for archive {name}")
        path, offset, length = (locate or {}).get(name, (f"{key.rel}/{name}", 0, None))
        if locate is not None and name not in locate:
            raise LayoutError(f"{where}: archive {name} is not in the shard index")
        size = info.size if info else length
        items.append(
            WorkItem(
                kind="archive",
                name=name,
                remote_path=path,
                offset=offset,
                length=length,
                size=size,
                approx_size=int(sizes_mb[name] * (1 << 20)),
                sha256=info.sha256 if info else None,
                members=info.files if info else None,
                stated=(("sha256", info.sha256.lower()),) if info and info.sha256 else (),
            )
        )
    metadata = {MOLMO_REMOTE_MANIFEST: molmo_manifest}
    if tries is not None:
        metadata[MOLMO_COMBINED_TRIES] = tries
    if dscache_manifest is not None:
        metadata[DSCACHE_MANIFEST] = dscache_manifest
    return VersionPlan(
        key=key,
        layout="archives",
        items=items,
        metadata=metadata,
        extracted_bytes=exact.bytes if exact else None,
        extracted_files=exact.files if exact else None,
    )


def _optional(remote: Remote, path: str) -> bytes | None:
    try:
        return remote.read_bytes(path)
    except NotFoundError:
        return None


def plan_archives(
    remote: Remote, key: VersionKey, shard_index: dict[str, tuple[str, int, int | None]] | None = None
) -> VersionPlan:
    """Fetch a version's metadata from `remote` and plan its archives."""
    where = f"{remote.url}/{key.rel}"
    # The three small reads at once: each is mostly the remote's first-byte latency (20 ms in the
    # benchmark's model), so one round trip before the first archive starts instead of three.
    with ThreadPoolExecutor(2, thread_name_prefix="dscache-meta") as pool:
        tries_read = pool.submit(_optional, remote, f"{key.rel}/{MOLMO_COMBINED_TRIES}")
        manifest_read = pool.submit(_optional, remote, f"{key.rel}/{DSCACHE_MANIFEST}")
        try:
            molmo = remote.read_bytes(f"{key.rel}/{MOLMO_REMOTE_MANIFEST}")
        except NotFoundError:
            raise LayoutError(
                f"version {key} not found: {where}/{MOLMO_REMOTE_MANIFEST} does not exist (layout Archives "
                f"expects {MOLMO_REMOTE_MANIFEST} and .tar.zst archives in each version, as `dscache "
                "publish` writes; for a plain file tree use layout: Files / --layout Files)"
            ) from None
        tries, manifest = tries_read.result(), manifest_read.result()
    return build_archive_plan(
        key, molmo_manifest=molmo, tries=tries, dscache_manifest=manifest, locate=shard_index, where=where
    )
