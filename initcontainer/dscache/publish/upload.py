"""The producer side: pack a directory tree into `.tar.zst` archives and publish it as one version.

What a remote version holds (see `layouts/manifest.py` and docs/architecture.md, "Remote layouts"):
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
so a consumer never sees a manifest naming missing archives; a replaced version's archives are never
overwritten with other bytes under the same name (`dscache.publish.stale`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from dscache.api import sizes
from dscache.api.names import VersionKey
from dscache.layouts.manifest import DSCACHE_MANIFEST, ArchiveInfo, DscacheManifest
from dscache.layouts.molmospaces import MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST, molmo_size_mb
from dscache.layouts.published import is_publish_output
from dscache.publish.hfshards import (
    DEFAULT_SHARD_SIZE,
    ShardWriter,
    hf_config_name,
    hf_index_path,
    index_parquet,
    readme_with_config,
    shard_name,
)
from dscache.publish.lease import publish_lease
from dscache.publish.pack import (
    DEFAULT_ARCHIVE_SIZE,
    DEFAULT_LEVEL,
    ArchivePlan,
    BadInputError,
    BuiltArchive,
    PublishError,
    compact_trie,
    plan_archives,
    scan_tree,
    write_archive,
)
from dscache.publish.placement import made_dirs
from dscache.publish.stale import LiveArchives, fresh_name, publishing_into, remove_stale
from dscache.remotes.base import NotFoundError, Remote

DEFAULT_BATCH_BYTES = 16 << 30


class SupersededError(PublishError):
    """Another publish switched the version after this one did: the remote serves its bytes."""


def parse_size(text: str) -> int:
    """A positive size (see `dscache.api.sizes.parse_size`); bad input is a `BadInputError` (exit 2)."""
    try:
        value = sizes.parse_size(text)
    except ValueError as err:
        raise BadInputError(str(err)) from None
    if value <= 0:
        raise BadInputError(f"size {text!r} must be positive")
    return value


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
    removed: list[str] = field(default_factory=list)  # objects of an earlier publish the manifest drops

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
            "removed": self.removed,
        }


def publish(
    tree: Path,
    remote: Remote,
    key: VersionKey,
    options: PublishOptions = PublishOptions(),
    log: Callable[[str], None] = lambda _msg: None,
) -> PublishResult:
    """Pack `tree` and upload it as version `key` (see `upload_version` for the order of uploads).

    The remote is checked first, before the tree is read or anything packed (`remote_version_problem`):
    a version the remote already has complete (its last manifest exists) is refused unless
    `options.overwrite`, since caches that installed it would silently differ from the remote; files
    publish does not write (another layout's version) are refused always. Once the new manifest is in
    place, removes what an earlier publish of the version left that it does not name
    (`dscache.publish.stale`). One publish per version at a time where the remote can hold a lease
    (`dscache.publish.lease`). Raises PublishError (another publish holds the lease),
    SupersededError (another publish switched the version after this one), BadInputError (the tree),
    RemoteError.
    """
    if options.archive_size <= 0 or options.shard_size <= 0:
        raise BadInputError("archive and shard sizes must be positive")
    vdir = _join(options.repo_prefix, key.rel)
    _check_remote(remote, key, vdir, options)
    entries, skipped = scan_tree(tree)
    plans = plan_archives(entries, options.archive_size)
    with publish_lease(remote, vdir, f"{key} at {remote.url}/{vdir}", log) as lease:
        # again under the lease: another publish may have finished meanwhile
        present = _check_remote(remote, key, vdir, options)
        if lease is None:  # what is there may be another publish's uploads: not ours to remove
            present = []
        log(f"packing {len(entries)} entries of {tree} into {len(plans)} archives for {key}")
        result = _publish_leased(
            tree, plans, remote, key, vdir=vdir, options=options, log=log, present=present
        )
    result.skipped = skipped
    return result


def _check_remote(remote: Remote, key: VersionKey, vdir: str, options: PublishOptions) -> list[str]:
    """The paths in `vdir`; raises PublishError if the version cannot be published there
    (`remote_version_problem`)."""
    last = DSCACHE_MANIFEST if options.dscache_manifest else MOLMO_REMOTE_MANIFEST
    try:
        present = [f.path for f in remote.list_files(vdir)]
    except NotFoundError:  # e.g. an HF repo that does not exist yet
        present = []
    problem = remote_version_problem(present, vdir, last, options.overwrite)
    if problem is not None:
        raise PublishError(f"{key} at {remote.url}/{vdir}: {problem}")
    return present


def _publish_leased(
    tree: Path,
    plans: Sequence[ArchivePlan],
    remote: Remote,
    key: VersionKey,
    *,
    vdir: str,
    options: PublishOptions,
    log: Callable[[str], None],
    present: Collection[str],
) -> PublishResult:
    """Pack `plans` of `tree` and upload them, once this publish holds the version's lease (or the
    remote offers none); `present`: the version directory's paths before that this publish may remove
    if its manifest does not name them (`stale.removable`: under a lease, what a killed publish
    left)."""
    with _work_dir(options.work_dir) as work, publishing_into(remote, vdir, log) as replaced:
        # a generator: the next archive is packed while the previous one uploads
        archives = (
            write_archive(tree, plan, work / plan.name, level=options.level, threads=options.threads)
            for plan in plans
        )
        live = LiveArchives(remote, vdir, replaced)
        result = upload_version(remote, key, archives, work, options=options, log=log, live=live)
    removal = remove_stale(
        remote,
        vdir,
        set(result.uploaded),
        log,
        replaced,
        earlier=present,
        own=[a.name for a in result.archives],
    )
    if removal.superseded:
        raise SupersededError(
            f"another publish replaced {key} at {remote.url}/{vdir} after this one: the remote holds that one"
        )
    if removal.lost:
        raise PublishError(
            f"{key} at {remote.url}/{vdir}: {len(removal.lost)} object(s) this publish uploaded were "
            f"removed meanwhile, e.g. {removal.lost[0]} (another publish of this version at once?); "
            "the version there is broken: publish it again"
        )
    result.removed = removal.removed
    return result


def upload_version(
    remote: Remote,
    key: VersionKey,
    archives: Iterable[BuiltArchive],
    work: Path,
    *,
    options: PublishOptions = PublishOptions(),
    log: Callable[[str], None] = lambda _msg: None,
    live: LiveArchives | None = None,
) -> PublishResult:
    """Upload `archives` (local copies are deleted) and then the metadata that names them.

    `live`: the archives the version being replaced names (`stale.LiveArchives`): an archive whose
    name it uses for other bytes goes up under `stale.fresh_name` instead, so no name a reader of
    the old manifest may fetch changes its bytes.

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
        for packed in archives:
            archive = _unshadowed(packed, live)
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


def _unshadowed(archive: BuiltArchive, live: LiveArchives | None) -> BuiltArchive:
    """`archive`, renamed (`stale.fresh_name`) when the live version names other bytes by its name."""
    if live is not None and live.shadows(archive.name, archive.sha256, archive.size):
        return dataclasses.replace(archive, name=fresh_name(archive.name, archive.sha256))
    return archive


def remote_version_problem(present: Sequence[str], vdir: str, last: str, overwrite: bool) -> str | None:
    """Pure: why a version cannot be published at `vdir` of a remote whose files under `vdir/` are
    `present` (paths relative to the remote's base), or None. Checked before anything is packed.

    - files `publish` never writes there, in a directory without an archive manifest (a
      `Files`-layout version, anyone's tree), are refused even with `overwrite`: uploading archives
      beside them would mix two versions in one directory. Beside an archive manifest they are a
      user's additions to an archive version (a LICENSE, notes): kept, and never a reason to refuse;
    - `last` (the manifest uploaded last) present means the version is published: refused unless
      `overwrite`;
    - archives, shards and metadata without `last` are what an interrupted publish left: replaced.
    """
    names = [p[len(vdir) + 1 :] if p.startswith(vdir + "/") else p for p in present]
    foreign = sorted(n for n in names if not is_publish_output(n))
    archive_version = MOLMO_REMOTE_MANIFEST in names or DSCACHE_MANIFEST in names
    if foreign and not archive_version:
        return (
            f"the remote already holds {len(foreign)} file(s) that publish does not write, e.g. "
            f"{foreign[0]!r} (a Files-layout version?); publish another version, or remove them first"
        )
    if last in names and not overwrite:
        return "already published (use --overwrite to replace it)"
    return None


def _join(prefix: str, rel: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{rel}" if prefix else rel


def _read_text(remote: Remote, path: str) -> str | None:
    try:
        return remote.read_bytes(path).decode("utf-8")
    except NotFoundError:
        return None


@contextlib.contextmanager
def _work_dir(parent: Path | None) -> Iterator[Path]:
    with contextlib.ExitStack() as stack:
        if parent is not None:
            stack.enter_context(made_dirs(parent))
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="dscache-publish-", dir=parent))
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
