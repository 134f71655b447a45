"""The molmospaces Hugging Face shard index, read without the `datasets` package.

On the Hub, molmospaces stores each version's `.tar.zst` archives inside uncompressed tar shards
`<prefix>/<dt>/<src>/<ver>/shards/NNNNN.tar`. Rows `{path, shard_id, offset, size}` locate each archive;
they are published with `datasets.push_to_hub(config_name=<prefix/dt/src/ver with '/' -> '__'>,
split="pkgs")`, i.e. parquet files listed under `configs:` in the repo's README.md front matter
(normally `<config>/pkgs-*.parquet`). We read the front matter and the parquet directly: `datasets`
is heavy, and all we need are four columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import yaml

from dscache.api.names import VersionKey
from dscache.remotes.base import NotFoundError, Remote, RemoteError

SPLIT = "pkgs"
COLUMNS = ("path", "shard_id", "offset", "size")


@dataclass(frozen=True)
class ShardEntry:
    """Where one archive sits: `shard` (path relative to the repo-root remote), byte offset and size."""

    shard: str
    offset: int
    size: int


def hf_dir(prefix: str, rel: str) -> str:
    """The version's directory in the repo: `<prefix>/<dt>/<src>/<ver>`."""
    return "/".join(p for p in (prefix.strip("/"), rel.strip("/")) if p)


def config_name(prefix: str, rel: str) -> str:
    """The datasets config holding the index of version `rel` (molmospaces' naming)."""
    return hf_dir(prefix, rel).replace("/", "__")


def shard_path(prefix: str, rel: str, shard_id: int) -> str:
    return f"{hf_dir(prefix, rel)}/shards/{shard_id:05d}.tar"


def _front_matter(readme: str) -> dict[str, Any]:
    lines = readme.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            try:
                data = yaml.safe_load("\n".join(lines[1:i]))
            except yaml.YAMLError:
                raise RemoteError("README.md: front matter is not valid YAML") from None
            return data if isinstance(data, dict) else {}
    return {}


def _patterns_from_readme(readme: str, config: str) -> list[str] | None:
    """The data_files patterns of split `pkgs` of `config`, or None if the card does not list it."""
    configs = _front_matter(readme).get("configs")
    if not isinstance(configs, list):
        return None
    for entry in configs:
        if not isinstance(entry, dict) or entry.get("config_name") != config:
            continue
        files = entry.get("data_files")
        if isinstance(files, str):
            return [files]
        if isinstance(files, dict):  # {split: pattern(s)}
            files = [{"split": k, "path": v} for k, v in files.items()]
        if not isinstance(files, list):
            return None
        patterns: list[str] = []
        for item in files:
            if isinstance(item, str):
                patterns.append(item)
            elif isinstance(item, dict) and item.get("split", SPLIT) == SPLIT:
                paths = item.get("path")
                patterns.extend(
                    [paths] if isinstance(paths, str) else [p for p in paths or [] if isinstance(p, str)]
                )
        return patterns or None
    return None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """fsspec-style glob: `*` and `?` stay within one path segment, `**` crosses segments."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _expand(remote: Remote, patterns: list[str]) -> list[str]:
    found: set[str] = set()
    for raw in patterns:
        pattern = raw.lstrip("/")
        if not any(c in pattern for c in "*?"):
            found.add(pattern)
            continue
        static = pattern[: min(pattern.find(c) for c in "*?" if c in pattern)]
        base = static.rsplit("/", 1)[0] if "/" in static else ""
        rx = _glob_regex(pattern)
        found.update(f.path for f in remote.list_files(base) if rx.match(f.path))
    return sorted(found)


def index_files(remote: Remote, prefix: str, rel: str) -> list[str]:
    """Parquet files of the index of `rel`: from README.md's `configs`, else `<config>/pkgs-*.parquet`."""
    config = config_name(prefix, rel)
    try:
        patterns = _patterns_from_readme(remote.read_bytes("README.md").decode("utf-8", "replace"), config)
    except NotFoundError:
        patterns = None
    files = _expand(remote, patterns or [f"{config}/{SPLIT}-*.parquet"])
    if not files:
        raise NotFoundError(
            f"{remote.url}: no shard index for {hf_dir(prefix, rel)!r} "
            f"(datasets config {config!r}, split {SPLIT!r})"
        )
    return files


def _rows(data: bytes, name: str) -> Iterator[tuple[str, int, int, int]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data), columns=list(COLUMNS))
    except (pa.ArrowException, OSError, ValueError, KeyError) as err:
        raise RemoteError(f"{name}: not a shard index parquet ({type(err).__name__}: {err})") from None
    cols = [table.column(c).to_pylist() for c in COLUMNS]
    for path, shard_id, offset, size in zip(*cols, strict=True):
        if not isinstance(path, str) or not all(
            isinstance(v, int) and v >= 0 for v in (shard_id, offset, size)
        ):
            raise RemoteError(f"{name}: malformed row {path!r}")
        yield path, shard_id, offset, size


def load_shard_index(remote: Remote, prefix: str, rel: str) -> dict[str, ShardEntry]:
    """Archive name -> where it sits, for version `rel` (`<dt>/<src>/<ver>`) under `prefix`.

    `remote` is the repo ROOT at the pinned commit (`HfRemote.root`): the index lives outside `prefix`.
    """
    index: dict[str, ShardEntry] = {}
    for name in index_files(remote, prefix, rel):
        for path, shard_id, offset, size in _rows(remote.read_bytes(name), f"{remote.url}/{name}"):
            index[path] = ShardEntry(shard_path(prefix, rel, shard_id), offset, size)
    return index


def stream_archive(remote: Remote, entry: ShardEntry) -> Iterator[bytes]:
    """The bytes of one archive, by Range request into its shard (resuming like any stream)."""
    return remote.stream(entry.shard, entry.offset, entry.size)


@runtime_checkable
class RepoRemote(Protocol):
    """A remote below a repository's root that can reach the root (the Hugging Face remote)."""

    @property
    def root(self) -> Remote:
        """The same repository at the same pinned revision, without the prefix."""


def shard_locations(
    remote: Remote, prefix: str, key: VersionKey
) -> dict[str, tuple[str, int, int | None]] | None:
    """Archive -> (shard path relative to `remote`, offset, size) for a version stored in HF shards.

    None when the version has no shard index, or `remote` cannot reach its repository's root (not HF).
    """
    if not isinstance(remote, RepoRemote):
        return None
    try:
        index = load_shard_index(remote.root, prefix, key.rel)
    except NotFoundError:
        return None
    strip = len(prefix.strip("/")) + 1 if prefix.strip("/") else 0
    return {name: (e.shard[strip:], e.offset, e.size) for name, e in index.items()}
