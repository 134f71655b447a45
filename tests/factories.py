"""Builders of remote versions for tests: plain trees, published versions, and hostile archives.

A plain module (no fixtures), imported as `tests.factories`. Published versions go through
`dscache.publish.upload`, so tests exercise the very layout `dscache publish` produces; hostile archives are
written by hand with `tarfile`, since no honest producer can make them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import zstandard

from dscache.api.names import VersionKey
from dscache.publish.pack import describe_archive, is_bookkeeping
from dscache.publish.upload import PublishOptions, PublishResult, publish, upload_version
from dscache.remotes.file import FileRemote

REPO = Path(__file__).resolve().parent.parent


def version_items(*versions: str, **fields: Mapping[str, str]) -> list[dict[str, str]]:
    """`spec.versions` items for `DT/SRC=VER` strings, e.g. `version_items("objects/thor=v1")` ->
    `[{"dataType": "objects", "source": "thor", "version": "v1"}]`; `fields` adds item fields by slot:
    `version_items("scenes/ithor=7", link={"scenes/ithor": "PerFile"})`."""
    items = []
    for text in versions:
        slot, _, version = text.partition("=")
        data_type, _, source = slot.partition("/")
        item = {"dataType": data_type, "source": source, "version": version}
        item.update({name: by_slot[slot] for name, by_slot in fields.items() if slot in by_slot})
        items.append(item)
    return items


def load_bench(name: str) -> ModuleType:
    """Import `bench/<name>.py` (bench/ is not a package on sys.path under pytest)."""
    if f"bench.{name}" in sys.modules:
        return sys.modules[f"bench.{name}"]
    spec = importlib.util.spec_from_file_location(f"bench.{name}", REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------- trees


@dataclass(frozen=True)
class Symlink:
    """A symlink in a `make_tree` spec, with its target exactly as written."""

    target: str


@dataclass(frozen=True)
class Exec:
    """An executable file in a `make_tree` spec."""

    content: bytes


TreeSpec = Mapping[str, "bytes | str | int | Symlink | Exec | None"]


def content_for(path: str, size: int) -> bytes:
    """`size` deterministic, poorly compressible bytes derived from `path` (so files differ)."""
    out = bytearray()
    seed = hashlib.sha256(path.encode()).digest()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "little")).digest()
        counter += 1
    return bytes(out[:size])


def make_tree(root: Path, spec: TreeSpec) -> Path:
    """Create files under `root` from `{relative path: content}` and return `root`.

    Content: bytes or str (file), int (that many deterministic bytes), `Exec(bytes)` (mode 0755),
    `Symlink(target)`, or None (an empty directory).
    """
    root.mkdir(parents=True, exist_ok=True)
    for rel, value in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if value is None:
            path.mkdir(exist_ok=True)
        elif isinstance(value, Symlink):
            path.symlink_to(value.target)
        elif isinstance(value, Exec):
            path.write_bytes(value.content)
            path.chmod(0o755)
        elif isinstance(value, int):
            path.write_bytes(content_for(rel, value))
        else:
            path.write_bytes(value.encode() if isinstance(value, str) else value)
    return root


def tree_snapshot(root: Path) -> dict[str, bytes | str | None]:
    """{relative path: file bytes | 'symlink -> target' | None for a directory} of a whole tree."""
    out: dict[str, bytes | str | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                out[rel] = f"symlink -> {os.readlink(full)}"
            elif full.is_dir():
                out[rel] = None
            else:
                out[rel] = full.read_bytes()
    return out


def dataset_snapshot(root: Path) -> dict[str, bytes | str | None]:
    """`tree_snapshot` of an installed version without the installer's bookkeeping files: the data."""
    return {k: v for k, v in tree_snapshot(root).items() if not is_bookkeeping(k)}


# ------------------------------------------------------------------------------ published versions


def publish_archives(
    tree: Path,
    remote_dir: Path,
    key: VersionKey,
    archive_size: int,
    *,
    dscache_manifest: bool = True,
    hf_shards: bool = False,
    hf_prefix: str = "",
    shard_size: int = 1 << 30,
) -> PublishResult:
    """Publish `tree` as version `key` into the local directory `remote_dir` (a file:// remote).

    With `hf_shards`, `remote_dir` becomes a mirror of an HF dataset repo whose versions live under
    `hf_prefix`: shards, the parquet index and README.md, as molmospaces' HFRemoteStorage reads them.
    """
    options = PublishOptions(
        archive_size=archive_size,
        dscache_manifest=dscache_manifest,
        hf_shards=hf_shards,
        repo_prefix=hf_prefix,
        shard_size=shard_size,
        threads=1,
        overwrite=True,
    )
    return publish(tree, FileRemote(remote_dir.resolve()), key, options)


def publish_tree_versions(
    tmp_path: Path, remote_dir: Path, keys: Iterable[VersionKey], *, dirs: int
) -> dict[VersionKey, Path]:
    """Publish, for each of `keys`, a tree of `dirs` directories of five files of 2,000 bytes and more
    (under `tmp_path/tree-<data type>`) as archives of about 8 KiB into `remote_dir`; the trees by key."""
    trees = {}
    for key in keys:
        tree = make_tree(
            tmp_path / f"tree-{key.data_type}",
            {f"d{i}/f{j}.txt": 2000 + i * j for i in range(dirs) for j in range(5)},
        )
        publish_archives(tree, remote_dir, key, archive_size=8192)
        trees[key] = tree
    return trees


def publish_raw_archives(
    remote_dir: Path,
    key: VersionKey,
    archives: Mapping[str, bytes],
    *,
    dscache_manifest: bool = True,
    hf_shards: bool = False,
    hf_prefix: str = "",
) -> PublishResult:
    """Publish arbitrary archive bytes (e.g. hostile ones) as version `key`, with correct manifests.

    Sizes and sha256 in the manifests match the bytes, so an installer gets as far as extracting them.
    Files, bytes and the trie come from the members, when the archive can be read at all.
    """
    options = PublishOptions(
        dscache_manifest=dscache_manifest, hf_shards=hf_shards, repo_prefix=hf_prefix, overwrite=True
    )
    remote_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=remote_dir.parent) as tmp:
        work = Path(tmp)
        built = []
        for name, data in sorted(archives.items()):
            local = work / name
            local.write_bytes(data)
            leaves, extracted = _members(data)
            built.append(describe_archive(name, local, leaves, extracted))
        return upload_version(FileRemote(remote_dir.resolve()), key, built, work, options=options)


def _members(data: bytes) -> tuple[list[str], int]:
    """(non-directory member names, bytes of regular members) of a .tar.zst, or nothing if unreadable."""
    try:
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            members = tar.getmembers()
    except (zstandard.ZstdError, tarfile.TarError, EOFError):
        return [], 0
    leaves = [m.name for m in members if not m.isdir()]
    return leaves, sum(m.size for m in members if m.isreg())


# ------------------------------------------------------------------------------ hostile archives

MALICIOUS_KINDS = (
    "absolute",  # member /<outside>/abs.txt
    "dotdot",  # member sub/../../escape-dotdot.txt
    "symlink_absolute",  # symlink -> /<outside>
    "symlink_relative",  # symlink -> ../../../../escape
    "symlink_chain",  # a -> . (inside), a/b -> .. (lexically inside, really outside), file a/b/x
    "symlink_write_through",  # symlink d -> /<outside>, then file d/pwned.txt
    "hardlink_absolute",  # hardlink -> /<outside>/victim
    "hardlink_dotdot",  # hardlink -> ../victim
    "char_device",
    "block_device",
    "fifo",
)
CORRUPT_KINDS = ("truncated", "garbage", "flipped")
BENIGN_MEMBER = "sub/benign.txt"


@dataclass(frozen=True)
class Hostile:
    """A hostile archive: its bytes and the member an installer must reject (and name)."""

    kind: str
    data: bytes
    member: str


def _info(name: str, kind: bytes, *, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    info.mode = 0o777 if kind == tarfile.SYMTYPE else 0o755 if kind == tarfile.DIRTYPE else 0o644
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = (1, 3) if kind == tarfile.CHRTYPE else (8, 0)
    return info


def tar_zst(members: Iterable[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A `.tar.zst` of exactly these members (names are not sanitised: that is the point)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(buf.getvalue())


def malicious_archive(kind: str, outside: Path) -> Hostile:
    """A `.tar.zst` whose members after `sub/benign.txt` abuse extraction; `outside` is a directory a
    test watches (nothing may appear in it). The benign member comes first, so a rejecting installer
    has already written something to staging and must clean up.
    """
    out = str(outside.resolve())
    payload = b"pwned\n"
    benign = [(_info("sub", tarfile.DIRTYPE), None), (_info(BENIGN_MEMBER, tarfile.REGTYPE, size=3), b"ok\n")]
    bad: list[tuple[tarfile.TarInfo, bytes | None]]
    if kind == "absolute":
        bad = [(_info(f"{out}/abs.txt", tarfile.REGTYPE, size=len(payload)), payload)]
    elif kind == "dotdot":
        bad = [
            (_info("sub/../../escape-dotdot.txt", tarfile.REGTYPE, size=len(payload)), payload),
        ]
    elif kind == "symlink_absolute":
        bad = [(_info("link-abs", tarfile.SYMTYPE, link=out), None)]
    elif kind == "symlink_relative":
        bad = [(_info("sub/link-rel", tarfile.SYMTYPE, link="../../../../escape"), None)]
    elif kind == "symlink_chain":
        bad = [
            (_info("a", tarfile.SYMTYPE, link="."), None),
            (_info("a/b", tarfile.SYMTYPE, link=".."), None),
            (_info("a/b/pwned.txt", tarfile.REGTYPE, size=len(payload)), payload),
        ]
    elif kind == "symlink_write_through":
        bad = [
            (_info("d", tarfile.SYMTYPE, link=out), None),
            (_info("d/pwned.txt", tarfile.REGTYPE, size=len(payload)), payload),
        ]
    elif kind == "hardlink_absolute":
        bad = [(_info("hard-abs", tarfile.LNKTYPE, link=f"{out}/victim"), None)]
    elif kind == "hardlink_dotdot":
        bad = [(_info("hard-rel", tarfile.LNKTYPE, link="../victim"), None)]
    elif kind == "char_device":
        bad = [(_info("dev-null", tarfile.CHRTYPE), None)]
    elif kind == "block_device":
        bad = [(_info("dev-sda", tarfile.BLKTYPE), None)]
    elif kind == "fifo":
        bad = [(_info("fifo", tarfile.FIFOTYPE), None)]
    else:
        raise ValueError(f"unknown malicious kind {kind!r}; one of {MALICIOUS_KINDS}")
    # symlink_chain: "a" and "a/b" are each harmless to a lexical check; "a/b" is the escape on disk
    member = "a/b" if kind == "symlink_chain" else bad[0][0].name
    return Hostile(kind, tar_zst([*benign, *bad]), member)


def corrupt_archive(kind: str) -> bytes:
    """A broken `.tar.zst`: `truncated` (a valid one cut in half), `garbage` (zstd magic, then noise),
    `flipped` (one byte changed mid-stream; the frame checksum or the tar parser catches it)."""
    good = tar_zst(
        [
            (_info(f"data/{i:03d}.bin", tarfile.REGTYPE, size=4096), content_for(str(i), 4096))
            for i in range(16)
        ]
    )
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "garbage":
        return b"\x28\xb5\x2f\xfd" + content_for("garbage", 4096)
    if kind == "flipped":
        mid = len(good) // 2
        return good[:mid] + bytes([good[mid] ^ 0xFF]) + good[mid + 1 :]
    raise ValueError(f"unknown corrupt kind {kind!r}; one of {CORRUPT_KINDS}")


def flip_byte(path: Path, offset: int = -1) -> None:
    """Change one byte of a published file in place (digest mismatch with the same size)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@contextmanager
def tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (mount's `size=` option, e.g. "1m") mounted at `mount` (made if missing) for
    the block: a small filesystem that really fills up. Needs root."""
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)
