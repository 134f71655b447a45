"""Installer benchmark (issue 2): eager install over HTTP on loopback, against baselines in the same run.

    python bench/bench_install.py [--work DIR] [--small N] [--repeat K]

Data: bench/gendata.py (~12,000 files of 0-16 KiB + two 50 MiB files in ~60 `.tar.zst` archives),
served by a threaded Range-capable HTTP server on 127.0.0.1. Contenders run interleaved, round after
round, each from a flushed disk; ratios are taken within a round and the median round is reported, so
a burst of load from elsewhere (this is a shared 2-core machine) hits the compared runs alike. Every
run writes into a fresh directory and all outputs are deleted only at the end: ext4 skips inodes
freed in the last minutes when it allocates (`recently_deleted`), and deleting one run's 12,000
files made the next run's file creation several times slower, whichever contender came next.
  floor       `curl URL | zstd -dc | tar -x`, 4 archives at a time (xargs -P4)
  dscache     `dscache install --jobs 4` (process start included), and its peak RSS
  molmo       molmospaces-resources 0.0.2 `setup_resource_manager(...)` eager install, same remote
Targets: dscache/floor <= 1.5, molmo/dscache >= 5, peak RSS < 300 MB and flat in dataset size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.gendata import GenSpec, generate, publish_generated  # noqa: E402
from dscache.names import VersionKey  # noqa: E402
from tests.servers.files import FileServer  # noqa: E402

KEY = VersionKey("objects", "thor", "bench")

MOLMO = """
import sys
from pathlib import Path
from molmospaces_resources import R2RemoteStorage, setup_resource_manager
url, links, cache, version = sys.argv[1:5]
setup_resource_manager(R2RemoteStorage(url), symlink_dir=Path(links), versions={"objects": {"thor": version}},
                       cache_dir=Path(cache), cache_lock=True, force_install=True)
"""


def timed(cmd: list[str] | str, *, shell: bool = False) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process tree.

    Starts from a flushed disk (sync) so that one contender's writeback is not charged to the next.
    """
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(cmd, shell=shell, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return seconds, max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)


def peak_rss_kib(cmd: list[str], cache: Path) -> int:
    """Peak RSS of an install into an empty `cache`, measured alone (getrusage keeps the maximum)."""
    shutil.rmtree(cache, ignore_errors=True)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource,subprocess,sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
            *cmd,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


def archives(remote: Path) -> list[str]:
    return sorted(p.name for p in (remote / KEY.rel).glob("*.tar.zst"))


def run_floor(url: str, names: list[str], out: Path) -> float:
    out.mkdir(parents=True)
    listing = out.parent / f"{out.name}.txt"
    listing.write_text("\n".join(names) + "\n")
    script = (
        f"xargs -P4 -I{{}} sh -c 'mkdir -p {out}/{{}}.d && curl -sf {url}/{KEY.rel}/{{}} "
        f"| zstd -dcq | tar -x -C {out}/{{}}.d' < {listing}"
    )
    return timed(script, shell=True)[0]


def dscache_cmd(url: str, cache: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dscache.cli",
        "install",
        "--cache",
        str(cache),
        "--source",
        url,
        "--version",
        str(KEY),
        "--jobs",
        "4",
    ]


def run_dscache(url: str, cache: Path) -> float:
    return timed(dscache_cmd(url, cache))[0]


def run_molmo(url: str, work: Path) -> float:
    work.mkdir(parents=True)
    cmd = [
        sys.executable,
        "-c",
        MOLMO,
        url,
        str(work / "molmo-links"),
        str(work / "molmo-cache"),
        KEY.version,
    ]
    return timed(cmd)[0]


def prepare_remote(work: Path, spec: GenSpec) -> Path:
    remote = work / f"remote-{spec.small_files}-{spec.big_files}"
    if not (remote / KEY.rel / "dscache-manifest.json").exists():
        tree = work / f"tree-{spec.small_files}-{spec.big_files}"
        shutil.rmtree(tree, ignore_errors=True)
        generate(tree, spec)
        publish_generated(tree, remote, KEY, archives=60)
        shutil.rmtree(tree)
    return remote


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, help="work dir (kept; the generated remote is reused)")
    parser.add_argument("--small", type=int, default=12_000, help="number of small files")
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (best is reported)")
    parser.add_argument("--skip-molmo", action="store_true", help="skip the slow molmospaces baseline")
    args = parser.parse_args()
    for tool in ("curl", "zstd", "tar"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench needs {tool} on PATH")
    work = args.work or Path(tempfile.mkdtemp(prefix="dscache-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    remote = prepare_remote(work, GenSpec(small_files=args.small))
    small_remote = prepare_remote(work, GenSpec(small_files=args.small // 4, big_files=1))
    names = archives(remote)
    rounds: dict[str, list[float]] = {"floor": [], "dscache": []}
    if not args.skip_molmo:
        rounds["molmo"] = []
    runs = work / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    with FileServer(remote) as server:
        url = server.url
        for i in range(args.repeat):
            rounds["floor"].append(run_floor(url, names, runs / f"floor-{i}"))
            rounds["dscache"].append(run_dscache(url, runs / f"cache-{i}"))
            if "molmo" in rounds:
                rounds["molmo"].append(run_molmo(url, runs / f"molmo-{i}"))
        rss_full = peak_rss_kib(dscache_cmd(url, work / "cache-rss"), work / "cache-rss") // 1024
    results = {name: statistics.median(times) for name, times in rounds.items()}
    over_floor = statistics.median(d / f for d, f in zip(rounds["dscache"], rounds["floor"], strict=True))
    with FileServer(small_remote) as server:
        rss_small = peak_rss_kib(dscache_cmd(server.url, work / "cache-rss"), work / "cache-rss") // 1024
    shutil.rmtree(runs)
    report = {
        "archives": len(names),
        "seconds": {k: round(v, 3) for k, v in results.items()},
        "rounds": {k: [round(t, 2) for t in v] for k, v in rounds.items()},
        "dscache_over_floor": round(over_floor, 2),
        "peak_rss_mb": {"full": rss_full, "quarter": rss_small},
    }
    if "molmo" in results:
        molmo_ratio = statistics.median(
            m / d for m, d in zip(rounds["molmo"], rounds["dscache"], strict=True)
        )
        report["molmo_over_dscache"] = round(molmo_ratio, 2)
    print(json.dumps(report, indent=2))
    print(f"dscache / shell floor : {report['dscache_over_floor']:.2f}x  (target <= 1.5)")
    if "molmo" in results:
        print(f"molmospaces / dscache : {report['molmo_over_dscache']:.2f}x  (target >= 5)")
    print(f"peak RSS              : {rss_full} MB full, {rss_small} MB quarter (target < 300, flat)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
