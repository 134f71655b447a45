"""The Hugging Face variant of a published version: archives inside uncompressed tar shards, located by
a parquet index that `datasets` (and `layouts/hfindex.py`) can read, registered in README.md."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dscache.api.names import VersionKey
from dscache.layouts.hfindex import SPLIT, config_name
from dscache.publish.pack import BLOCK, BuiltArchive, TreeEntry, tar_info

DEFAULT_SHARD_SIZE = 1 << 30


@dataclass(frozen=True)
class ShardRow:
    """A row of the HF index: archive `path` is `size` bytes at byte `offset` of shard `shard_id`."""

    path: str
    shard_id: int
    offset: int
    size: int


def shard_name(shard_id: int) -> str:
    return f"shards/{shard_id:05d}.tar"


class ShardWriter:
    """Appends archives to uncompressed tar shards of about `shard_size` bytes in `work`."""

    def __init__(self, work: Path, shard_size: int) -> None:
        self.work = work
        self.shard_size = shard_size
        self.rows: list[ShardRow] = []
        self._shard_id = -1
        self._tar: tarfile.TarFile | None = None
        self._path: Path | None = None

    def add(self, archive: BuiltArchive) -> tuple[int, Path] | None:
        """Append `archive`; returns (shard id, path) of a finished shard when this one is full."""
        if self._tar is None:
            self._shard_id += 1
            self._path = self.work / f"{self._shard_id:05d}.tar"
            self._tar = tarfile.open(self._path, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        info = tar_info(TreeEntry(archive.name, "file", archive.size))
        with open(archive.local, "rb") as fh:
            self._tar.addfile(info, fh)
        # the data is the last (padded) block run written; addfile() does not report its offset
        offset = self._tar.offset - -(-archive.size // BLOCK) * BLOCK
        self.rows.append(ShardRow(archive.name, self._shard_id, offset, archive.size))
        return self.finish() if self._tar.offset >= self.shard_size else None

    def finish(self) -> tuple[int, Path] | None:
        """Close the current shard, if any, and return (shard id, path)."""
        if self._tar is None or self._path is None:
            return None
        self._tar.close()
        self._tar = None
        return self._shard_id, self._path


def hf_config_name(repo_prefix: str, key: VersionKey) -> str:
    """The `datasets` config name molmospaces reads the index from: the version dir with '/' -> '__'."""
    return config_name(repo_prefix, key.rel)


def hf_index_path(config: str) -> str:
    """Where `datasets.push_to_hub(config_name=config, split="pkgs")` puts the single parquet file."""
    return f"{config}/{SPLIT}-00000-of-00001.parquet"


def index_parquet(rows: Sequence[ShardRow]) -> bytes:
    """The shard index as the parquet `datasets` writes (same schema and features metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ("path", "shard_id", "offset", "size")
    features = {c: {"dtype": "string" if c == "path" else "int64", "_type": "Value"} for c in columns}
    schema = pa.schema(
        [pa.field("path", pa.string())] + [pa.field(c, pa.int64()) for c in columns[1:]],
        metadata={"huggingface": json.dumps({"info": {"features": features}})},
    )
    table = pa.Table.from_pylist([vars(r) for r in rows], schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def readme_with_config(readme: str | None, config: str) -> str:
    """README.md with a `configs:` front-matter entry for `config` (added or replaced, others kept)."""
    import yaml

    meta: dict[str, Any] = {}
    body = readme or ""
    if body.startswith("---\n"):
        end = body.find("\n---", 4)
        if end != -1:
            meta = yaml.safe_load(body[4:end]) or {}
            body = body[end + 4 :].lstrip("\n")
    entry = {"config_name": config, "data_files": [{"split": SPLIT, "path": f"{config}/{SPLIT}-*"}]}
    configs = [c for c in meta.get("configs", []) if c.get("config_name") != config]
    meta["configs"] = [*configs, entry]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n{body}"
