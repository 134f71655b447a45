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
  dscache     `dscache install --jobs 4` (process start included), and the peak memory of its process
              tree (installer plus worker processes) on the full data and on a quarter of it
  molmo       molmospaces-resources 0.0.2 `setup_resource_manager(...)` eager install, same remote
Targets: dscache/floor <= 1.5, molmo/dscache >= 5, peak RSS < 300 MB and flat in dataset size.
"""

from __future__ import annotations

import argparse
import json
import os
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
from bench.needs import require  # noqa: E402
from dscache.api.names import VersionKey  # noqa: E402
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


def timed(cmd: list[str] | str, *, shell: bool = False) -> float:
    """Wall seconds of one child process tree.

    Starts from a flushed disk (sync) so that one contender's writeback is not charged to the next.
    """
    os.sync()
    start = time.perf_counter()
    subprocess.run(cmd, shell=shell, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    found = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                for child in fh.read().split():
                    found += _tree(int(child))
    except OSError:
        pass  # exited meanwhile
    return found


def _memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process; PSS splits the pages forked workers share with their parent."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def peak_memory_mb(cmd: list[str], cache: Path) -> dict[str, int]:
    """Peak memory of an install into an empty `cache`, run alone: the whole process tree (installer
    and its worker processes) sampled every 5 ms. `pss`: summed proportional set size, the honest
    total; `rss_sum` counts shared pages once per process; `rss_max`: the largest single process."""
    shutil.rmtree(cache, ignore_errors=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = {"pss": 0, "rss_sum": 0, "rss_max": 0}
    while proc.poll() is None:
        mem = [_memory_kib(pid) for pid in _tree(proc.pid)]
        peak["pss"] = max(peak["pss"], sum(p for _, p in mem))
        peak["rss_sum"] = max(peak["rss_sum"], sum(r for r, _ in mem))
        peak["rss_max"] = max(peak["rss_max"], *(r for r, _ in mem), 0)
        time.sleep(0.005)
    if proc.returncode != 0:
        raise SystemExit(f"dscache install failed with exit code {proc.returncode}")
    return {k: v // 1024 for k, v in peak.items()}


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
    return timed(script, shell=True)


def dscache_cmd(url: str, cache: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dscache.cli.app",
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
    return timed(dscache_cmd(url, cache))


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
    return timed(cmd)


def prepare_remote(work: Path, spec: GenSpec) -> Path:
    remote = work / f"remote-{spec.small_files}-{spec.big_files}"
    if not (remote / KEY.rel / "dscache-manifest.json").exists():
        tree = work / f"tree-{spec.small_files}-{spec.big_files}"
        shutil.rmtree(tree, ignore_errors=True)
        generate(tree, spec)
        publish_generated(tree, remote, KEY, archives=60)
        shutil.rmtree(tree)
    return remote


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, help="work dir (kept; the generated remote is reused)")
    parser.add_argument("--small", type=int, default=12_000, help="number of small files (a count)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of every contender (the median is reported)"
    )
    parser.add_argument("--skip-molmo", action="store_true", help="skip the slow molmospaces baseline")
    args = parser.parse_args(argv)
    if not args.skip_molmo:
        require({"molmospaces_resources": "the molmospaces baseline; or --skip-molmo"}, "bench_install.py")
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
        mem_full = peak_memory_mb(dscache_cmd(url, work / "cache-rss"), work / "cache-rss")
    results = {name: statistics.median(times) for name, times in rounds.items()}
    over_floor = statistics.median(d / f for d, f in zip(rounds["dscache"], rounds["floor"], strict=True))
    with FileServer(small_remote) as server:
        mem_small = peak_memory_mb(dscache_cmd(server.url, work / "cache-rss"), work / "cache-rss")
    shutil.rmtree(runs)
    report = {
        "archives": len(names),
        "seconds": {k: round(v, 3) for k, v in results.items()},
        "rounds": {k: [round(t, 2) for t in v] for k, v in rounds.items()},
        "dscache_over_floor": round(over_floor, 2),
        "peak_memory_mb": {"full": mem_full, "quarter": mem_small},
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
    print(
        f"peak memory           : {mem_full['pss']} MB full, {mem_small['pss']} MB quarter "
        f"(process tree PSS; RSS summed {mem_full['rss_sum']} / {mem_small['rss_sum']} MB; "
        "target < 300, flat)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
