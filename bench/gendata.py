"""Deterministic generated dataset of the benchmark's shape, and its publication as a remote.

Shape (issue 2, "Performance"): ~12,000 small files of 0-16 KiB with semi-compressible content in
nested `objects/<bucket>/<object>/...` directories, plus two 50 MiB files, published as ~60 `.tar.zst`
archives in the molmospaces + dscache layout. The same seed always gives the same bytes, so
benchmark runs (and the demo) are comparable.

    python bench/gendata.py OUT_TREE [--small N] [--publish REMOTE_DIR --version DT/SRC=VER]
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from dscache.api.names import VersionKey, parse_version_arg
from dscache.publish.pack import scan_tree, tar_size
from dscache.publish.upload import PublishOptions, PublishResult, publish
from dscache.remotes.file import FileRemote

MIB = 1 << 20
_WORDS = (
    b"mesh texture joint body geom site camera light material asset scene object handle drawer "
    b"door hinge slide friction damping stiffness inertia mass pos quat euler axis range "
).split()


@dataclass(frozen=True)
class GenSpec:
    """What to generate. Defaults are the benchmark's shape; tests shrink `small_files`/`big_size`."""

    small_files: int = 12_000
    max_small: int = 16 * 1024
    big_files: int = 2
    big_size: int = 50 * MIB
    buckets: int = 32
    seed: int = 0


@dataclass(frozen=True)
class GenStats:
    """What was generated."""

    files: int
    bytes: int


def word_pool(rng: random.Random, size: int = MIB) -> bytes:
    """A block of word soup (compresses ~3x); slices of it make the compressible part of files."""
    words = [rng.choice(_WORDS) + (b"\n" if rng.random() < 0.1 else b" ") for _ in range(size // 5)]
    return b"".join(words)[:size]


def semi_compressible(rng: random.Random, n: int, pool: bytes) -> bytes:
    """`n` bytes that zstd shrinks to roughly half: runs of random bytes interleaved with word soup."""
    out = bytearray()
    while len(out) < n:
        run = rng.randint(64, 1024)
        if rng.random() < 0.45:
            out += rng.randbytes(run)
        else:
            start = rng.randrange(0, len(pool) - run)
            out += pool[start : start + run]
    return bytes(out[:n])


def generate(root: Path, spec: GenSpec = GenSpec()) -> GenStats:
    """Create the dataset under `root` (which must not exist yet or be empty)."""
    rng = random.Random(spec.seed)
    pool = word_pool(rng)
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    total = 0
    made = 0
    obj = 0
    while made < spec.small_files:
        bucket = f"{obj % spec.buckets:03d}"
        obj_dir = root / "objects" / bucket / f"obj_{obj:05d}"
        obj += 1
        for i in range(min(rng.randint(1, 8), spec.small_files - made)):
            sub = (
                obj_dir
                / ("textures" if i % 3 == 2 else "")
                / f"part_{i}.{rng.choice(['xml', 'bin', 'json'])}"
            )
            sub.parent.mkdir(parents=True, exist_ok=True)
            size = min(int(rng.expovariate(1 / 6000)), spec.max_small)
            sub.write_bytes(semi_compressible(rng, size, pool))
            total += size
            made += 1
    for i in range(spec.big_files):
        path = root / "big" / f"blob_{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            for offset in range(0, spec.big_size, MIB):
                fh.write(semi_compressible(rng, min(MIB, spec.big_size - offset), pool))
        total += spec.big_size
    return GenStats(files=made + spec.big_files, bytes=total)


def archive_size_for(root: Path, archives: int, big_threshold: int = 8 * MIB) -> int:
    """The `--archive-size` giving about `archives` archives: big files take one each, the rest split."""
    entries, _ = scan_tree(root)
    big = [e for e in entries if e.size >= big_threshold]
    small = sum(tar_size(e) for e in entries if e.size < big_threshold)
    return max(1, -(-small // max(1, archives - len(big))))


def publish_generated(
    root: Path, remote_dir: Path, key: VersionKey, *, archives: int = 60, hf_shards: bool = False
) -> PublishResult:
    """Publish the tree at `root` into the local directory `remote_dir` as about `archives` archives."""
    options = PublishOptions(
        archive_size=archive_size_for(root, archives), hf_shards=hf_shards, overwrite=True
    )
    return publish(root, FileRemote(remote_dir.resolve()), key, options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="where to generate the tree")
    parser.add_argument("--small", type=int, default=GenSpec.small_files, help="number of small files")
    parser.add_argument("--big", type=int, default=GenSpec.big_files, help="number of big files")
    parser.add_argument("--big-mib", type=int, default=GenSpec.big_size // MIB, help="size of each big file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--publish", type=Path, metavar="REMOTE_DIR", help="also publish into this dir")
    parser.add_argument("--version", default="bench/gen=v1", metavar="DT/SRC=VER")
    parser.add_argument("--archives", type=int, default=60, help="about how many archives")
    parser.add_argument("--hf-shards", action="store_true", help="publish the HF shard variant")
    args = parser.parse_args(argv)
    spec = GenSpec(small_files=args.small, big_files=args.big, big_size=args.big_mib * MIB, seed=args.seed)
    stats = generate(args.out, spec)
    print(f"generated {stats.files} files, {stats.bytes / MIB:.1f} MiB in {args.out}")
    if args.publish:
        key = parse_version_arg(args.version)
        result = publish_generated(
            args.out, args.publish, key, archives=args.archives, hf_shards=args.hf_shards
        )
        print(
            f"published {key} to {args.publish}: {len(result.archives)} archives, "
            f"{result.compressed / MIB:.1f} MiB compressed"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
