"""Build molmospaces' Hugging Face layout for tests: archives packed into uncompressed tar shards,
plus the `{path, shard_id, offset, size}` index as `datasets.push_to_hub` would publish it (parquet
under `<config>/pkgs-00000-of-00001.parquet`, listed in README.md's `configs:` front matter)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping
from typing import Any

import yaml


def config_name(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}".strip("/").replace("/", "__")


def shard_archives(
    archives: Mapping[str, bytes], shard_bytes: int = 1 << 20
) -> tuple[list[bytes], list[dict[str, Any]]]:
    """Pack archives into tar shards of about `shard_bytes`; rows locate each archive's bytes."""
    shards: list[bytes] = []
    rows: list[dict[str, Any]] = []
    names = sorted(archives)
    while names:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            total = 0
            while names and (total == 0 or total + len(archives[names[0]]) <= shard_bytes):
                name = names.pop(0)
                info = tarfile.TarInfo(name)
                info.size = len(archives[name])
                tar.addfile(info, io.BytesIO(archives[name]))
                total += info.size
        data = buf.getvalue()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            for member in tar.getmembers():
                rows.append(
                    {
                        "path": member.name,
                        "shard_id": len(shards),
                        "offset": member.offset_data,
                        "size": member.size,
                    }
                )
        shards.append(data)
    return shards, rows


def index_parquet(rows: list[dict[str, Any]]) -> bytes:
    """The index rows as the parquet file `datasets` writes (columns path, shard_id, offset, size)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "path": pa.array([r["path"] for r in rows], pa.string()),
            "shard_id": pa.array([r["shard_id"] for r in rows], pa.int64()),
            "offset": pa.array([r["offset"] for r in rows], pa.int64()),
            "size": pa.array([r["size"] for r in rows], pa.int64()),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def readme(configs: list[str], body: str = "# molmospaces mirror\n") -> bytes:
    """A dataset card whose front matter lists each config's `pkgs` split, like push_to_hub writes it."""
    meta = {
        "dataset_info": [
            {
                "config_name": c,
                "features": [
                    {"name": "path", "dtype": "string"},
                    {"name": "shard_id", "dtype": "int64"},
                    {"name": "offset", "dtype": "int64"},
                    {"name": "size", "dtype": "int64"},
                ],
                "splits": [{"name": "pkgs"}],
            }
            for c in configs
        ],
        "configs": [
            {"config_name": c, "data_files": [{"split": "pkgs", "path": f"{c}/pkgs-*"}]} for c in configs
        ],
    }
    return f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n{body}".encode()


def version_files(
    prefix: str, rel: str, archives: Mapping[str, bytes], shard_bytes: int = 1 << 20
) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """Repo files of one version (shards, size manifest, index parquet; no README) and the index rows."""
    base = f"{prefix}/{rel}".strip("/")
    shards, rows = shard_archives(archives, shard_bytes)
    files = {f"{base}/shards/{i:05d}.tar": data for i, data in enumerate(shards)}
    sizes = {name: len(data) / 1e6 for name, data in archives.items()}
    files[f"{base}/mjthor_resource_file_to_size_mb.json"] = json.dumps(sizes).encode()
    config = config_name(prefix, rel)
    files[f"{config}/pkgs-00000-of-00001.parquet"] = index_parquet(rows)
    return files, rows
