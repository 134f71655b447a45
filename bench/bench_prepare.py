"""Benchmark `dscache prepare` against its baselines, measured in the same run (issue 3, "Performance").

    python bench/bench_prepare.py [--workdir /tmp/dscache-bench] [--scratch-parent DIR] [--runs 50]

Data: the installer benchmark's shape (bench/gendata.py: ~12,000 files of 0-16 KiB plus two 50 MiB
files), published straight into a cache through the cache contract. Both Python tools run from their
own venv with bytecode caching on, as in an image; every timing includes process start.

(a) warm prepare (scratch already holds the version) vs euler-files 1.3.0 warm `sync` (smart-skip);
    target: ratio <= 1.
(b) cold copy to scratch vs `cp -a` (target ratio <= 1.25) and vs euler-files cold `sync` (rsync;
    target ratio < 1). The source is in the page cache for every contender (one untimed `cp -a`
    first), so this compares copy engines, not the disk; `sync` runs between runs, untimed.
(c) p50 and p99 of warm prepare over `--runs` runs: the time a training pod waits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]


from gendata import GenSpec, generate  # noqa: E402

from dscache.api.names import parse_version_arg  # noqa: E402
from dscache.store.paths import CachePaths  # noqa: E402
from dscache.store.records import read_complete  # noqa: E402
from tests.dscache.prepare.prepare_helpers import publish_tree, staging_dir  # noqa: E402

VERSION = "bench/gen=v1"
EULER = "euler-files==1.3.0"
EULER_VAR = "DSCACHE_BENCH_GEN"


def ensure_dataset(cache: Path) -> Path:
    """The published benchmark version (generated on first use, then reused)."""
    final = CachePaths(cache).version_dir(parse_version_arg(VERSION))
    if not final.is_dir():
        tree = staging_dir(cache)
        generate(tree, GenSpec())
        publish_tree(cache, VERSION, tree)
    return final


def ensure_venvs(workdir: Path) -> tuple[Path, Path]:
    """(dscache entry script, euler-files entry script), each in its own venv."""
    ds_venv, eu_venv = workdir / "venv-dscache", workdir / "venv-euler"
    if not (ds_venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(ds_venv)], check=True)
    site = next((ds_venv / "lib").glob("python3*/site-packages"))
    (site / "dscache-src.pth").write_text(str(REPO / "initcontainer") + "\n")
    entry = ds_venv / "bin" / "dscache"  # what pip generates for the console script
    entry.write_text(
        f"#!{ds_venv / 'bin' / 'python'}\nimport sys\nfrom dscache.cli.app import main\nsys.exit(main())\n"
    )
    entry.chmod(0o755)
    if not (eu_venv / "bin" / "euler-files").exists():
        subprocess.run([sys.executable, "-m", "venv", str(eu_venv)], check=True)
        subprocess.run([str(eu_venv / "bin" / "pip"), "install", "-q", EULER], check=True)
    return entry, eu_venv / "bin" / "euler-files"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def fresh(path: Path) -> Path:
    if path.exists():
        subprocess.run(["rm", "-rf", str(path)], check=True)
    path.mkdir(parents=True)
    return path


class Contenders:
    """The commands under test, each bound to its own scratch/home directories."""

    def __init__(self, workdir: Path, scratch_parent: Path, dscache: Path, euler: Path, source: Path) -> None:
        self.workdir, self.scratch_parent = workdir, scratch_parent
        self.dscache, self.euler, self.source = dscache, euler, source
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.home = workdir / "euler-home"

    def cp(self) -> float:
        dst = fresh(self.scratch_parent / "cp") / "v1"
        return timed(["cp", "-a", str(self.source), str(dst)], self.env)

    def prepare(self) -> float:
        cmd = [str(self.dscache), "prepare", "--cache", str(self.workdir / "cache"), "--version", VERSION]
        cmd += ["--links", str(self.workdir / "links"), "--scratch", str(self.scratch_parent / "dscache")]
        cmd += ["--env-file", str(self.workdir / "dscache.env")]
        return timed(cmd, self.env)

    def fresh_prepare(self) -> float:
        fresh(self.scratch_parent / "dscache")
        return self.prepare()

    def sync(self) -> float:
        return timed([str(self.euler), "sync"], {**self.env, "HOME": str(self.home)})

    def fresh_sync(self) -> float:
        fresh(self.home)
        config = {
            "version": 1,
            "scratch_base": str(fresh(self.scratch_parent / "euler")),
            "vars": {EULER_VAR: {"source": str(self.source), "enabled": True}},
        }
        (self.home / ".euler-files.json").write_text(json.dumps(config))
        return self.sync()


def interleave(
    runs: int, contenders: dict[str, Callable[[], float]], between: Callable[[], None]
) -> dict[str, list[float]]:
    """Run each contender `runs` times, round-robin, so background load hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, run in contenders.items():
            times[name].append(run())
            between()
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def verdict(ratio: float, limit: float, strict: bool = False) -> str:
    ok = ratio < limit if strict else ratio <= limit
    return f"{ratio:5.2f}x  (target {'<' if strict else '<='} {limit:g}: {'met' if ok else 'MISSED'})"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dscache-bench"))
    parser.add_argument("--scratch-parent", type=Path, help="where the copies go (default: the workdir)")
    parser.add_argument("--runs", type=int, default=50, help="warm runs (c)")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold runs per contender (b)")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    (workdir / "cache").mkdir(parents=True, exist_ok=True)
    source = ensure_dataset(workdir / "cache")
    dscache, euler = ensure_venvs(workdir)
    c = Contenders(workdir, (args.scratch_parent or workdir).resolve(), dscache, euler, source)
    record = read_complete(source)
    assert record is not None
    print(
        f"data: {source} ({record.files} files, {record.bytes / 2**20:.0f} MiB); scratch under "
        f"{c.scratch_parent}; {os.cpu_count()} cpus; load average {os.getloadavg()[0]:.1f}"
    )

    c.cp()  # page cache: every contender reads from memory
    for warm_up in (c.fresh_prepare, c.fresh_sync):  # compiles bytecode in both venvs
        warm_up()
    cold = interleave(
        args.cold_runs, {"cp -a": c.cp, "dscache": c.fresh_prepare, "euler": c.fresh_sync}, os.sync
    )
    warm = interleave(args.runs, {"dscache": c.prepare, "euler": c.sync}, lambda: None)

    med = {name: statistics.median(v) for name, v in cold.items()}
    print(f"\n(b) cold copy to scratch, median of {args.cold_runs}:")
    for name, value in med.items():
        print(f"    {name:<8} {ms(value)}   (all: {', '.join(f'{v:.2f}' for v in cold[name])} s)")
    print(f"    dscache / cp -a   {verdict(med['dscache'] / med['cp -a'], 1.25)}")
    print(f"    dscache / euler   {verdict(med['dscache'] / med['euler'], 1.0, strict=True)}")

    p50 = {name: percentile(v, 0.5) for name, v in warm.items()}
    print(f"\n(a) warm, median of {args.runs} (process start included):")
    print(f"    dscache prepare {ms(p50['dscache'])}   euler-files sync {ms(p50['euler'])}")
    print(f"    dscache / euler   {verdict(p50['dscache'] / p50['euler'], 1.0)}")
    print(
        f"\n(c) warm prepare over {args.runs} runs: p50 {ms(p50['dscache'])}   "
        f"p99 {ms(percentile(warm['dscache'], 0.99))}   "
        f"(euler-files: p50 {ms(p50['euler'])}, p99 {ms(percentile(warm['euler'], 0.99))})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
