"""The producer side: pack a directory tree into `.tar.zst` archives and publish it as one version.

What a remote version holds (see `layouts/manifest.py` and DESIGN.md, "Remote layouts"):
  `<v>/<name>.tar.zst`                         archives (or, with HF shards, `<v>/shards/NNNNN.tar` plus a
                                               parquet index `<config>/pkgs-00000-of-00001.parquet` and a
                                               `configs:` entry in the README front matter)
  `<v>/mjthor_resources_combined_meta.json.gz` molmospaces path tries, one per archive
  `<v>/mjthor_resource_file_to_size_mb.json`   molmospaces manifest
  `<v>/dscache-manifest.json`                  exact sizes, sha256, files and bytes (uploaded last)
with `<v> = [<repo_prefix>/]<dt>/<src>/<ver>`.

Archives are reproducible (sorted members, fixed mtime/uid/gid/owner names, normalised modes, zstd in
multi-threaded mode whose output does not depend on the thread count), so publishing the same tree again
gives byte-identical archives and manifests. Everything is uploaded before the metadata that names it,
so a consumer never sees a manifest naming missing archives.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol, runtime_checkable

import zstandard

from dscache import sizes
from dscache.cachepaths import (
    COMPLETE_RECORD,
    DSCACHE_MANIFEST,
    INVENTORY,
    MOLMO_COMBINED_TRIES,
    MOLMO_LOCAL_MANIFEST,
    MOLMO_REMOTE_MANIFEST,
)
from dscache.layouts.manifest import ArchiveInfo, DscacheManifest, molmo_size_mb
from dscache.names import VersionKey
from dscache.remotes.base import NotFoundError, Remote

ARCHIVE_SUFFIX = ".tar.zst"
DEFAULT_ARCHIVE_SIZE = 64 << 20
DEFAULT_SHARD_SIZE = 1 << 30
DEFAULT_LEVEL = 3
DEFAULT_BATCH_BYTES = 16 << 30
TAR_MTIME = 0  # every member's mtime: reproducible archives
HF_SPLIT = "pkgs"
BLOCK = 512
_COPY_CHUNK = 1 << 20

# Files an installed cache version carries that are not part of the dataset: publishing an installed
# version (mirroring it elsewhere) must not ship the old installer's bookkeeping as data.
_BOOKKEEPING = frozenset(
    {
        COMPLETE_RECORD,
        INVENTORY,
        MOLMO_REMOTE_MANIFEST,
        MOLMO_COMBINED_TRIES,
        MOLMO_LOCAL_MANIFEST,
        DSCACHE_MANIFEST,
    }
)
_MOLMO_FLAG = re.compile(r"^\..+_complete_(extract|links)$")


class PublishError(Exception):
    """Publishing failed (remote, disk, or a conflict); the message is safe to show."""


class BadInputError(PublishError):
    """The input cannot be published as is (usage/validation error); the message names the culprit."""


# ---------------------------------------------------------------------------------------------- sizes


def parse_size(text: str) -> int:
    """A positive size (see `dscache.sizes.parse_size`); bad input is a `BadInputError` (exit 2)."""
    try:
        value = sizes.parse_size(text)
    except ValueError as err:
        raise BadInputError(str(err)) from None
    if value <= 0:
        raise BadInputError(f"size {text!r} must be positive")
    return value


# ------------------------------------------------------------------------------------------ the tree


@dataclass(frozen=True)
class TreeEntry:
    """One member-to-be: a regular file, a symlink, or an empty directory (relative POSIX path)."""

    path: str
    kind: Literal["file", "symlink", "dir"]
    size: int = 0
    executable: bool = False
    target: str = ""  # symlink target, as written in the link

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))


def is_bookkeeping(rel: str) -> bool:
    """True for top-level files an installer writes into a version (never dataset content)."""
    return "/" not in rel and (rel in _BOOKKEEPING or _MOLMO_FLAG.match(rel) is not None)


def symlink_escapes(rel: str, target: str) -> bool:
    """True if the link at `rel` (relative to the tree root) points outside the tree, judged lexically."""
    if not target or target.startswith("/"):
        return True
    depth = len(rel.split("/")) - 1  # directories above the link, inside the tree
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def scan_tree(root: Path) -> tuple[list[TreeEntry], list[str]]:
    """Walk `root` without following links: (entries in walk order, skipped bookkeeping files).

    Rejects what no consumer could safely extract: symlinks leaving the tree (absolute targets,
    `..` past the root, or resolving outside it), devices, fifos, sockets, names that are not UTF-8.
    """
    if not root.is_dir():
        raise BadInputError(f"{root}: not a directory")
    real_root = root.resolve()
    entries: list[TreeEntry] = []
    skipped: list[str] = []

    def walk(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as it:
            children = sorted(it, key=lambda e: e.name)
        if not children and prefix:
            entries.append(TreeEntry(prefix.rstrip("/"), "dir"))
        for child in children:
            rel = prefix + child.name
            _check_name(rel, root)
            st = child.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(child.path)
                if symlink_escapes(rel, target) or not _resolves_inside(Path(child.path), real_root):
                    raise BadInputError(f"{root / rel}: symlink to {target!r} points outside the tree")
                entries.append(TreeEntry(rel, "symlink", target=target))
            elif stat.S_ISDIR(st.st_mode):
                walk(Path(child.path), rel + "/")
            elif stat.S_ISREG(st.st_mode):
                if not prefix and is_bookkeeping(rel):
                    skipped.append(rel)
                    continue
                entries.append(TreeEntry(rel, "file", st.st_size, bool(st.st_mode & 0o111)))
            else:
                raise BadInputError(f"{root / rel}: {_kind_name(st.st_mode)} cannot be published")

    walk(root, "")
    if all(e.kind == "dir" for e in entries):
        raise BadInputError(f"{root}: nothing to publish (no files)")
    return entries, skipped


def _resolves_inside(link: Path, real_root: Path) -> bool:
    resolved = Path(os.path.realpath(link))
    return resolved == real_root or resolved.is_relative_to(real_root)


def _check_name(rel: str, root: Path) -> None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInputError(f"{root}: file name {rel!r} is not valid UTF-8") from None
    if "\n" in rel or "\r" in rel:
        raise BadInputError(f"{root}: file name {rel!r} contains a line break")


def _kind_name(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


# -------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class ArchivePlan:
    """The members of one archive, in order."""

    name: str
    entries: tuple[TreeEntry, ...]

    @property
    def leaf_paths(self) -> list[str]:
        """Files and links (what molmospaces' trie lists; empty directories are not leaves there)."""
        return [e.path for e in self.entries if e.kind != "dir"]

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries)


def tar_size(entry: TreeEntry) -> int:
    """Approximate bytes `entry` takes in an uncompressed tar (header, PAX name record, data)."""
    extra = 3 * BLOCK if len(entry.path.encode()) > 100 or not entry.path.isascii() else 0
    return BLOCK + extra + -(-entry.size // BLOCK) * BLOCK


def plan_archives(entries: Sequence[TreeEntry], archive_size: int) -> list[ArchivePlan]:
    """Group entries into archives of about `archive_size` uncompressed tar bytes.

    A subtree that fits is never split (like molmospaces packages, one object per archive where
    possible); bigger subtrees are split at their children, recursively; consecutive units are packed
    greedily in walk order, so an archive holds neighbouring subtrees. A file larger than
    `archive_size` gets an archive of its own.
    """
    units = _units(list(entries), 0, archive_size)
    groups: list[list[TreeEntry]] = []
    current: list[TreeEntry] = []
    current_size = 0
    for unit in units:
        size = sum(tar_size(e) for e in unit)
        if current and current_size + size > archive_size:
            groups.append(current)
            current, current_size = [], 0
        current.extend(unit)
        current_size += size
    if current:
        groups.append(current)
    width = max(4, len(str(len(groups) - 1)))
    return [
        ArchivePlan(f"{_slug(g[0].parts[0])}_{i:0{width}d}{ARCHIVE_SUFFIX}", tuple(g))
        for i, g in enumerate(groups)
    ]


def _units(entries: list[TreeEntry], depth: int, archive_size: int) -> Iterator[list[TreeEntry]]:
    """Split `entries` (all under one directory at `depth`) into whole-subtree units that fit."""
    i = 0
    while i < len(entries):
        head = entries[i].parts[depth]
        j = i
        while j < len(entries) and entries[j].parts[depth] == head:
            j += 1
        group = entries[i:j]
        is_dir = len(group) > 1 or len(group[0].parts) > depth + 1
        if is_dir and sum(tar_size(e) for e in group) > archive_size:
            yield from _units(group, depth + 1, archive_size)
        else:
            yield group
        i = j


def _slug(component: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "_", component).strip("_-")[:40] or "files"


def compact_trie(paths: Iterable[str]) -> dict[str, Any]:
    """molmospaces' `CompactPathTrie.from_paths(paths).to_dict()`, without depending on it."""
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for part in path.strip("/").split("/"):
            node = node.setdefault(part, {})
    return _compact(root)


def _compact(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in node.items():
        key, child = name, _compact(value)
        while len(child) == 1:
            ((child_key, child_value),) = child.items()
            if not child_value:
                break
            key, child = f"{key}/{child_key}", child_value
        out[key] = child
    return out


# -------------------------------------------------------------------------------------- archives


@dataclass(frozen=True)
class BuiltArchive:
    """An archive written to local disk, with what the manifests say about it."""

    name: str
    local: Path
    size: int
    sha256: str
    files: int  # files and links (every non-directory member)
    bytes: int  # extracted bytes of regular files
    leaf_paths: tuple[str, ...]

    def info(self) -> ArchiveInfo:
        return ArchiveInfo(
            name=self.name,
            size=self.size,
            size_mb=molmo_size_mb(self.size),
            sha256=self.sha256,
            files=self.files,
            bytes=self.bytes,
        )


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through to `raw`."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def tar_info(entry: TreeEntry) -> tarfile.TarInfo:
    """The reproducible header of `entry`: only the path, type, size, link and an exec bit vary."""
    info = tarfile.TarInfo(entry.path)
    info.mtime = TAR_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "file":
        info.type, info.size = tarfile.REGTYPE, entry.size
        info.mode = 0o755 if entry.executable else 0o644
    elif entry.kind == "symlink":
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.target, 0o777
    else:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def write_archive(
    root: Path, plan: ArchivePlan, out: Path, *, level: int = DEFAULT_LEVEL, threads: int = -1
) -> BuiltArchive:
    """Write `plan` as `.tar.zst` to `out`, hashing on the way. Fails if a file changed size meanwhile."""
    compressor = zstandard.ZstdCompressor(
        level=level, threads=threads if threads != 0 else 1, write_checksum=True
    )
    with open(out, "wb") as raw:
        hashing = _HashingWriter(raw)
        with (
            compressor.stream_writer(hashing, closefd=False) as zw,  # type: ignore[arg-type]
            tarfile.open(fileobj=zw, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for entry in plan.entries:
                info = tar_info(entry)
                if entry.kind != "file":
                    tar.addfile(info)
                    continue
                with open(root / entry.path, "rb") as fh:
                    if os.fstat(fh.fileno()).st_size != entry.size:
                        raise PublishError(f"{root / entry.path}: changed while publishing")
                    tar.addfile(info, fh)
        raw.flush()
        os.fsync(raw.fileno())
    return BuiltArchive(
        name=plan.name,
        local=out,
        size=hashing.size,
        sha256=hashing.sha.hexdigest(),
        files=len(plan.leaf_paths),
        bytes=plan.bytes,
        leaf_paths=tuple(plan.leaf_paths),
    )


def describe_archive(
    name: str, local: Path, leaf_paths: Sequence[str] = (), extracted_bytes: int = 0
) -> BuiltArchive:
    """A `BuiltArchive` for an archive made elsewhere (hashes `local`); for tests and re-publishing."""
    sha = hashlib.sha256()
    size = 0
    with open(local, "rb") as fh:
        while chunk := fh.read(_COPY_CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return BuiltArchive(
        name, local, size, sha.hexdigest(), len(leaf_paths), extracted_bytes, tuple(leaf_paths)
    )


# ----------------------------------------------------------------------------------- HF tar shards


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
    return _join(repo_prefix, key.rel).replace("/", "__")


def hf_index_path(config: str) -> str:
    """Where `datasets.push_to_hub(config_name=config, split="pkgs")` puts the single parquet file."""
    return f"{config}/{HF_SPLIT}-00000-of-00001.parquet"


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
    entry = {"config_name": config, "data_files": [{"split": HF_SPLIT, "path": f"{config}/{HF_SPLIT}-*"}]}
    configs = [c for c in meta.get("configs", []) if c.get("config_name") != config]
    meta["configs"] = [*configs, entry]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n{body}"


# -------------------------------------------------------------------------------------- metadata


def version_metadata(
    archives: Sequence[BuiltArchive], *, dscache_manifest: bool = True
) -> list[tuple[str, bytes]]:
    """(file name, content) of a version's metadata, in upload order: trie, molmo manifest, dscache."""
    tries = {a.name: compact_trie(a.leaf_paths) for a in archives}
    molmo = {a.name: molmo_size_mb(a.size) for a in archives}
    out = [
        (MOLMO_COMBINED_TRIES, gzip.compress(json.dumps(tries, sort_keys=True).encode(), 9, mtime=0)),
        (MOLMO_REMOTE_MANIFEST, (json.dumps(molmo, indent=2, sort_keys=True) + "\n").encode()),
    ]
    if dscache_manifest:
        manifest = DscacheManifest(
            archives={a.name: a.info() for a in archives},
            files=sum(a.files for a in archives),
            bytes=sum(a.bytes for a in archives),
        )
        out.append((DSCACHE_MANIFEST, manifest.dumps()))
    return out


# ------------------------------------------------------------------------------------ publishing


@dataclass(frozen=True)
class PublishOptions:
    """How to pack and where in the remote to put the version."""

    archive_size: int = DEFAULT_ARCHIVE_SIZE
    level: int = DEFAULT_LEVEL
    threads: int = -1  # zstd workers; -1: one per CPU. Output is the same for any value >= 1.
    hf_shards: bool = False
    shard_size: int = DEFAULT_SHARD_SIZE
    repo_prefix: str = ""  # versions live under `<repo_prefix>/<dt>/<src>/<ver>` (an HF repo's prefix)
    dscache_manifest: bool = True
    overwrite: bool = False
    work_dir: Path | None = None
    batch_bytes: int = DEFAULT_BATCH_BYTES  # data per commit on a remote that batches (HF)


@dataclass
class PublishResult:
    """What was published."""

    key: VersionKey
    version_dir: str  # on the remote, relative to its base
    archives: list[ArchiveInfo] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    compressed: int = 0
    uploaded: list[str] = field(default_factory=list)  # remote paths in upload order
    skipped: list[str] = field(default_factory=list)  # bookkeeping files not published

    def to_json(self) -> dict[str, Any]:
        return {
            "version": str(self.key),
            "versionDir": self.version_dir,
            "archives": len(self.archives),
            "files": self.files,
            "bytes": self.bytes,
            "compressedBytes": self.compressed,
            "uploaded": self.uploaded,
            "skipped": self.skipped,
        }


def publish(
    tree: Path,
    remote: Remote,
    key: VersionKey,
    options: PublishOptions = PublishOptions(),
    log: Callable[[str], None] = lambda _msg: None,
) -> PublishResult:
    """Pack `tree` and upload it as version `key` (see `upload_version` for the order of uploads).

    Refuses to replace a version the remote already has complete (its last manifest exists) unless
    `options.overwrite`, since caches that installed it would silently differ from the remote.
    """
    if options.archive_size <= 0 or options.shard_size <= 0:
        raise BadInputError("archive and shard sizes must be positive")
    entries, skipped = scan_tree(tree)
    vdir = _join(options.repo_prefix, key.rel)
    last = DSCACHE_MANIFEST if options.dscache_manifest else MOLMO_REMOTE_MANIFEST
    if not options.overwrite and _exists(remote, f"{vdir}/{last}"):
        raise PublishError(
            f"{key} is already published at {remote.url}/{vdir} (use --overwrite to replace it)"
        )
    plans = plan_archives(entries, options.archive_size)
    log(f"packing {len(entries)} entries of {tree} into {len(plans)} archives for {key}")
    with _work_dir(options.work_dir) as work:
        # a generator: the next archive is packed while the previous one uploads
        archives = (
            write_archive(tree, plan, work / plan.name, level=options.level, threads=options.threads)
            for plan in plans
        )
        result = upload_version(remote, key, archives, work, options=options, log=log)
    result.skipped = skipped
    return result


def upload_version(
    remote: Remote,
    key: VersionKey,
    archives: Iterable[BuiltArchive],
    work: Path,
    *,
    options: PublishOptions = PublishOptions(),
    log: Callable[[str], None] = lambda _msg: None,
) -> PublishResult:
    """Upload `archives` (local copies are deleted) and then the metadata that names them.

    Order: archives (or HF shards), then the HF index and README, then the trie, the molmospaces
    manifest and the dscache manifest, each after the previous upload, so a consumer that finds a
    manifest always finds everything it names. On a `BatchRemote` (HF) a small version is a single,
    atomic commit; a big one is data commits followed by one commit with the rest.
    """
    vdir = _join(options.repo_prefix, key.rel)
    result = PublishResult(key=key, version_dir=vdir)
    built: list[BuiltArchive] = []
    with _Uploader(remote, result, options.batch_bytes, f"dscache publish {key}") as up:
        shards = ShardWriter(work, options.shard_size) if options.hf_shards else None
        for archive in archives:
            built.append(archive)
            log(f"packed {archive.name}: {archive.files} files, {archive.bytes} -> {archive.size} bytes")
            if shards is None:
                up.put(f"{vdir}/{archive.name}", archive.local)
                continue
            done = shards.add(archive)
            archive.local.unlink()
            if done is not None:
                up.put(f"{vdir}/{shard_name(done[0])}", done[1])
        if shards is not None:
            done = shards.finish()
            if done is not None:
                up.put(f"{vdir}/{shard_name(done[0])}", done[1])
            config = hf_config_name(options.repo_prefix, key)
            up.put_bytes(hf_index_path(config), index_parquet(shards.rows), work)
            readme = _read_text(remote, "README.md")
            up.put_bytes("README.md", readme_with_config(readme, config).encode(), work)
        for name, data in version_metadata(built, dscache_manifest=options.dscache_manifest):
            up.put_bytes(f"{vdir}/{name}", data, work)
    result.archives = [a.info() for a in built]
    result.files = sum(a.files for a in built)
    result.bytes = sum(a.bytes for a in built)
    result.compressed = sum(a.size for a in built)
    return result


def _join(prefix: str, rel: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{rel}" if prefix else rel


def _exists(remote: Remote, path: str) -> bool:
    try:
        remote.read_bytes(path)
    except NotFoundError:
        return False
    return True


def _read_text(remote: Remote, path: str) -> str | None:
    try:
        return remote.read_bytes(path).decode("utf-8")
    except NotFoundError:
        return None


@contextlib.contextmanager
def _work_dir(parent: Path | None) -> Iterator[Path]:
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dscache-publish-", dir=parent) as tmp:
        yield Path(tmp)


@runtime_checkable
class BatchRemote(Protocol):
    """A remote that uploads several files in one atomic step (the HF Hub: one commit, rate-limited)."""

    def put_files(self, files: list[tuple[str, Path]], message: str | None = None) -> str: ...


class _Uploader:
    """Uploads in one background thread, so the next archive is packed meanwhile (one step in flight).

    Steps run strictly in order. A `BatchRemote` gets files in batches of about `batch_bytes` (each
    one commit), and `wait()` ends a batch, so what is put after it lands in a later commit.
    """

    def __init__(self, remote: Remote, result: PublishResult, batch_bytes: int, message: str) -> None:
        self.remote = remote
        self.result = result
        self.batch_bytes = batch_bytes
        self.message = message
        self._batch: list[tuple[str, Path]] | None = [] if isinstance(remote, BatchRemote) else None
        self._batched = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dscache-upload")
        self._pending: Future[None] | None = None

    def __enter__(self) -> _Uploader:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def put(self, path: str, local: Path) -> None:
        """Upload `local` to `path` (deleting it afterwards), after everything put before."""
        self.result.uploaded.append(path)
        if self._batch is None:
            self._submit([(path, local)])
            return
        self._batch.append((path, local))
        self._batched += local.stat().st_size
        if self._batched >= self.batch_bytes:
            self._flush()

    def put_bytes(self, path: str, data: bytes, work: Path) -> None:
        local = work / f"meta-{len(self.result.uploaded)}-{Path(path).name}"
        local.write_bytes(data)
        self.put(path, local)

    def wait(self) -> None:
        """Block until everything put so far is on the remote."""
        self._flush()
        self._wait_pending()

    def _flush(self) -> None:
        if self._batch:
            files, self._batch, self._batched = self._batch, [], 0
            self._submit(files)

    def _submit(self, files: list[tuple[str, Path]]) -> None:
        self._wait_pending()

        def job() -> None:
            if isinstance(self.remote, BatchRemote):
                self.remote.put_files(files, self.message)
            else:
                for path, local in files:
                    self.remote.put_file(path, local)
            for _, local in files:
                local.unlink()

        self._pending = self._pool.submit(job)

    def _wait_pending(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()
