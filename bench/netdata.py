"""The network benchmark's workloads: what each one is, and its data generated once into a work dir.

    large     `files` layout, COUNT files of SIZE (default 4 x 512 MB)
    archives  molmospaces layout, COUNT .tar.zst archives of about SIZE (default 60 x 50 MB)
    small     `files` layout, COUNT files of SIZE (default 20,000 x 8 KB)

File contents come from bench/gendata.py: its semi-compressible bytes for the `files` layouts, and its
tree generator and publisher for the archives (one big file per archive, sized so that zstd brings it
to about SIZE, plus one archive of 2,000 small object files). A workload's data is kept under
`<work>/data/<name>` and reused by later runs with the same sizes.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.gendata import MIB, GenSpec, generate, publish_generated, semi_compressible, word_pool
from dscache.api.names import VersionKey

Layout = Literal["files", "archives"]
COMPRESSED_SHARE = 0.57
"""zstd's output over input for gendata's semi-compressible bytes (measured: 0.57 at level 3)."""
ARCHIVE_SMALL_FILES = 2_000


@dataclass(frozen=True)
class Workload:
    """One workload: `count` objects of about `size` bytes each, in `layout`, as version `key`."""

    kind: Literal["large", "archives", "small"]
    count: int
    size: int

    @property
    def layout(self) -> Layout:
        return "archives" if self.kind == "archives" else "files"

    @property
    def key(self) -> VersionKey:
        # molmospaces-resources reads archives of its own data types, so they keep bench_install's key.
        return (
            VersionKey("objects", "thor", "bench")
            if self.kind == "archives"
            else VersionKey("bench", self.kind, "v1")
        )

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.count}x{_human(self.size)}"

    def describe(self) -> str:
        what = "archives (molmospaces layout)" if self.kind == "archives" else "files (files layout)"
        return f"{self.kind}: {self.count:,} {what} of {_human(self.size)}"


@dataclass(frozen=True)
class Dataset:
    """A workload's generated remote: `remote/<key.rel>/` holds the version as every server serves it."""

    workload: Workload
    remote: Path
    objects: list[str]
    """The version's objects a download must fetch (data files or archives), relative to the version."""
    bytes: int
    """Their total size: what every contender must move."""
    extracted: int
    """Bytes of the dataset once extracted (the data files themselves for the `files` layouts)."""

    @property
    def version_dir(self) -> Path:
        return self.remote / self.workload.key.rel


def _human(size: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= scale and size % (scale // 1000 or 1) == 0:
            return f"{size / scale:g}{unit}"
    return f"{size}B"


def _write_files(root: Path, count: int, size: int, seed: int) -> None:
    """`count` files of exactly `size` bytes, 1,000 per directory, semi-compressible content.

    Named `.dat`, which the fake Hub (like the real one's usual .gitattributes) keeps out of LFS
    below 10 MB: small files are answered by `resolve` itself, large ones redirect to its CDN.
    """
    rng = random.Random(seed)
    pool = word_pool(rng)
    for i in range(count):
        path = root / f"d{i // 1000:03d}" / f"f{i:05d}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            for offset in range(0, size, MIB):
                fh.write(semi_compressible(rng, min(MIB, size - offset), pool))


def _archives(remote: Path, workload: Workload, scratch: Path) -> None:
    big = max(9 * MIB, round(workload.size / COMPRESSED_SHARE))  # >= gendata's 8 MiB "own archive" cut
    tree = scratch / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    spec = GenSpec(small_files=ARCHIVE_SMALL_FILES, big_files=workload.count - 1, big_size=big)
    generate(tree, spec)
    publish_generated(tree, remote, workload.key, archives=workload.count)
    shutil.rmtree(tree)


def prepare(work: Path, workload: Workload) -> Dataset:
    """The workload's dataset under `work/data/<name>`, generating it first if absent."""
    base = work / "data" / workload.name
    remote = base / "remote"
    done = base / ".complete"
    if not done.exists():
        shutil.rmtree(base, ignore_errors=True)
        vdir = remote / workload.key.rel
        if workload.kind == "archives":
            if workload.count < 2:
                raise SystemExit("the archives workload needs at least 2 archives")
            _archives(remote, workload, base)
        else:
            _write_files(vdir, workload.count, workload.size, seed=len(workload.name))
        done.touch()
    vdir = remote / workload.key.rel
    if workload.kind == "archives":
        objects = sorted(p.name for p in vdir.glob("*.tar.zst"))
        extracted = _extracted_bytes(vdir)
    else:
        objects = sorted(p.relative_to(vdir).as_posix() for p in vdir.rglob("*") if p.is_file())
        extracted = sum((vdir / o).stat().st_size for o in objects)
    total = sum((vdir / o).stat().st_size for o in objects)
    return Dataset(workload, remote, objects, total, extracted)


def _extracted_bytes(vdir: Path) -> int:
    """The data bytes of a published archives version, from its dscache manifest."""
    manifest = json.loads((vdir / "dscache-manifest.json").read_bytes())
    return int(manifest["bytes"])
