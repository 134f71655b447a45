"""Versions that share bytes (issue 15): installing v2 next to v1, when 5 % of v2's files changed.

    python bench/bench_share.py [--files N] [--size BYTES] [--changed PCT] [--repeat K]

Data: v1 is N files of BYTES deterministic, incompressible bytes (`files` layout); v2 is v1 with PCT %
of its files rewritten (same sizes, new content). Served over HTTP on 127.0.0.1 by the test servers
the suite uses: moto's S3 server behind its proxy (md5 ETags) and the fake Hugging Face Hub (LFS
sha256 for `.bin` files). Per backend and round, two contenders run interleaved:
  shared   v2 installed into a cache that holds v1 (installed beforehand, not timed): the unchanged
           files are hard-linked from v1, the changed ones downloaded
  full     v2 installed into an empty cache: every file downloaded
Each contender calls the installer in this process (`dscache.install.pipeline.install`, with its
worker processes) and reports the bytes its transfers received (`InstallResult.downloaded_bytes`);
the servers' request logs give the number of file GETs. Times are wall seconds of the install call,
median of the rounds. Every cache is deleted at the end only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from bench.needs import require  # noqa: E402
from dscache.api.manifest import spec_from_flags  # noqa: E402
from dscache.api.names import VersionKey  # noqa: E402
from dscache.api.sizes import format_size  # noqa: E402
from dscache.install.pipeline import InstallResult, install  # noqa: E402
from tests.servers.faults import RequestLog  # noqa: E402
from tests.servers.hub import FakeHub  # noqa: E402
from tests.servers.s3 import MotoS3  # noqa: E402

V1 = VersionKey("objects", "thor", "v1")
V2 = VersionKey("objects", "thor", "v2")


class _Quiet:
    """A sink that drops the installer's events."""

    def emit(self, event: str, fields: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def content(name: str, size: int) -> bytes:
    """`size` deterministic, incompressible bytes named by `name`."""
    seed = hashlib.sha256(name.encode()).digest()
    blocks = (size + 31) // 32
    return b"".join(hashlib.sha256(seed + i.to_bytes(8, "little")).digest() for i in range(blocks))[:size]


def versions(files: int, size: int, changed_pct: float) -> dict[VersionKey, dict[str, bytes]]:
    """{version: {path: bytes}}: v2 rewrites every (100 / changed_pct)-th file of v1."""
    names = [f"part-{i // 50:03d}/file-{i:05d}.bin" for i in range(files)]
    step = max(1, round(100 / changed_pct))
    changed = set(names[::step])
    v1 = {name: content(f"v1:{name}", size) for name in names}
    v2 = {name: content(f"v2:{name}", size) if name in changed else v1[name] for name in names}
    return {V1: v1, V2: v2}


@dataclass(frozen=True)
class Backend:
    name: str
    source: str
    log: RequestLog
    file_gets: Callable[[RequestLog], int]


@dataclass(frozen=True)
class Run:
    seconds: float
    downloaded: int
    shared: int
    gets: int


def run_install(backend: Backend, cache: Path, key: VersionKey) -> Run:
    spec = spec_from_flags(backend.source, "files", [str(key)])
    backend.log.clear()
    started = time.perf_counter()
    result: InstallResult = install(spec, cache, "bench", _Quiet(), jobs=4)
    seconds = time.perf_counter() - started
    return Run(seconds, result.downloaded_bytes, result.shared_bytes, backend.file_gets(backend.log))


def measure(backend: Backend, work: Path, repeat: int) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {"shared": [], "full": []}
    for i in range(repeat):
        with_v1 = work / f"{backend.name}-shared-{i}"
        run_install(backend, with_v1, V1)
        os.sync()
        runs["shared"].append(run_install(backend, with_v1, V2))
        os.sync()
        runs["full"].append(run_install(backend, work / f"{backend.name}-full-{i}", V2))
    return runs


def table(results: dict[str, dict[str, list[Run]]], files: int) -> str:
    lines = [
        "| backend | install of v2 | file GETs | bytes downloaded | bytes linked | seconds (median) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for backend, runs in results.items():
        for label, contender in (("next to v1 (shared)", "shared"), ("empty cache (full)", "full")):
            rs = runs[contender]
            last = rs[-1]
            median = statistics.median(r.seconds for r in rs)
            lines.append(
                f"| {backend} | {label} | {last.gets}/{files} | {format_size(last.downloaded)} | "
                f"{format_size(last.shared)} | {median:.2f} |"
            )
        ratio = statistics.median(r.seconds for r in runs["full"]) / statistics.median(
            r.seconds for r in runs["shared"]
        )
        lines.append(f"| {backend} | full / shared time | | | | {ratio:.1f}x |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=200, help="files per version (default 200)")
    parser.add_argument("--size", type=int, default=256 << 10, help="bytes per file (default 256 KiB)")
    parser.add_argument("--changed", type=float, default=5.0, help="percent of files v2 changes (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    args = parser.parse_args()
    require({"moto": "the S3 server of the S3 rounds"}, "bench_share.py")
    data = versions(args.files, args.size, args.changed)
    work = Path(tempfile.mkdtemp(prefix="bench-share-", dir=args.work))
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing-secret", AWS_DEFAULT_REGION="us-east-1"
    )
    results: dict[str, dict[str, list[Run]]] = {}
    try:
        with MotoS3() as s3:
            bucket = s3.new_bucket("bench-share")
            for key, files in data.items():
                for path, body in files.items():
                    s3.client().put_object(Bucket=bucket, Key=f"{key.rel}/{path}", Body=body)
            os.environ["AWS_ENDPOINT_URL"] = s3.endpoint
            backend = Backend(
                "S3 (moto)", f"s3://{bucket}", s3.log, lambda log: len(log.find(f"*/{V2.rel}/*", "GET"))
            )
            results[backend.name] = measure(backend, work, args.repeat)
        with FakeHub(work / "hub") as hub:
            for key, files in data.items():
                hub.commit("bench/share", {f"{key.rel}/{p}": b for p, b in files.items()})
            os.environ["HF_ENDPOINT"] = hub.endpoint
            backend = Backend(
                "HF (test Hub)",
                "hf://datasets/bench/share",
                hub.log,
                lambda log: len(log.find(f"*/resolve/*/{V2.rel}/*", "GET")),
            )
            results[backend.name] = measure(backend, work, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    changed = sum(1 for p in data[V1] if data[V1][p] != data[V2][p])
    total = format_size(args.files * args.size)
    print(
        f"v1 then v2: {args.files} files of {format_size(args.size)} ({total}), "
        f"{changed} changed in v2; {args.repeat} round(s)"
    )
    print(table(results, args.files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
