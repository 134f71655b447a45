"""Installs across nodes (issue 16): K cooperating workers (`dscache install --workers K`), each behind
its own node's NIC, against one object store with an aggregate cap.

    python bench/bench_workers.py [--work DIR] [--workers 1,2,3,4] [--archives 24] [--archive-mb 8]
                                  [--nic-mbps 10] [--conn-mbps 5] [--aggregate-mbps 25] [--latency-ms 20]

The network model (bench/netmodel.py) is chained: each worker reads through its own proxy, which
caps each of its connections at --conn-mbps and all of them together at --nic-mbps (one node's
NIC), and all those proxies read through one shared proxy holding the store's first-byte latency and
its --aggregate-mbps cap, in front of the HTTP file server (tests/servers/files.py). The K workers
run as processes on this machine, each with `--jobs` connections, into a fresh cache dir; the time
is from the start of the first to the exit of the last (the one that publishes), so it includes
planning, extraction, verification and the commit. The data is bench/netdata.py's archives workload
(molmospaces layout), generated once into --work.

Expected: K workers reach min(K x NIC, aggregate); the table gives each run's rate against that
limit and its speed-up over one worker. Results also go to <work>/workers-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "initcontainer")]

from bench.netdata import Dataset, Workload, prepare  # noqa: E402
from bench.netmodel import MB, Caps, NetModel  # noqa: E402
from dscache.store.paths import CachePaths  # noqa: E402
from tests.servers.files import FileServer  # noqa: E402


@dataclass(frozen=True)
class Row:
    workers: int
    seconds: float
    rate: float
    """Bytes per second of the archives moved."""
    limit: float
    """The model's limit for K workers: min(K x NIC, aggregate), bytes per second."""
    published: bool


def _log(msg: str) -> None:
    print(f"[bench_workers] {msg}", file=sys.stderr, flush=True)


def run_team(data: Dataset, urls: list[str], cache: Path, jobs: int) -> tuple[float, bool]:
    """(wall seconds, whether the version was published) of len(urls) workers, worker i via urls[i]."""
    k = len(urls)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "initcontainer"), str(REPO)])}
    key = data.workload.key
    os.sync()
    start = time.perf_counter()
    procs = []
    for i, url in enumerate(urls):
        team = ["--workers", str(k), "--worker-index", str(i), "--team", f"bench-{k}"] if k > 1 else []
        argv = [
            sys.executable, "-m", "dscache.cli.app", "install", "--cache", str(cache), "--source", url,
            "--version", str(key), "--jobs", str(jobs), "--json", *team,
        ]  # fmt: skip
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    codes = [p.wait() for p in procs]
    seconds = time.perf_counter() - start
    for p, code in zip(procs, codes, strict=True):
        if code != 0:
            assert p.stderr is not None
            _log(f"a worker failed (exit {code}): {p.stderr.read().decode(errors='replace')[-400:]}")
    published = CachePaths(cache).complete_record(key).is_file()
    return seconds, all(c == 0 for c in codes) and published


def table(rows: list[Row], data: Dataset, store: Caps, node: Caps) -> str:
    base = rows[0].rate if rows and rows[0].workers == 1 else None
    lines = [
        f"{len(data.objects)} archives, {data.bytes / MB:.0f} MB; each worker (node): "
        f"{node.aggregate_rate / MB:g} MB/s, {node.conn_rate / MB:g} MB/s per connection; the store: "
        f"first byte {store.latency * 1000:g} ms, {store.aggregate_rate / MB:g} MB/s in all",
        "",
        "| workers | time | rate | model limit | rate/limit | speed-up vs 1 |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        speedup = f"{r.rate / base:.2f}x" if base else "-"
        note = "" if r.published else " (NOT PUBLISHED)"
        lines.append(
            f"| {r.workers} | {r.seconds:.1f} s | {r.rate / MB:.1f} MB/s | {r.limit / MB:.0f} MB/s "
            f"| {r.rate / r.limit:.2f} | {speedup}{note} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dscache-workersbench")
    p.add_argument("--workers", default="1,2,3,4", help="comma-separated worker counts")
    p.add_argument("--archives", type=int, default=24)
    p.add_argument("--archive-mb", type=int, default=8, help="about this many MB per archive (>= 5)")
    p.add_argument("--nic-mbps", type=float, default=10, help="one worker's (node's) cap, MB/s")
    p.add_argument("--conn-mbps", type=float, default=5, help="per-connection cap, MB/s")
    p.add_argument("--aggregate-mbps", type=float, default=25, help="the store's cap over all workers, MB/s")
    p.add_argument("--latency-ms", type=float, default=20, help="first-byte latency per request, ms")
    p.add_argument("--jobs", type=int, default=4, help="dscache --jobs per worker")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    data = prepare(args.work, Workload("archives", args.archives, args.archive_mb * MB))
    counts = [int(k) for k in args.workers.split(",")]
    store = Caps(conn_rate=0, latency=args.latency_ms / 1000, aggregate_rate=args.aggregate_mbps * MB)
    node = Caps(conn_rate=args.conn_mbps * MB, latency=0, aggregate_rate=args.nic_mbps * MB)
    nic = args.nic_mbps * MB
    rows: list[Row] = []
    with FileServer(data.remote) as files, NetModel([files.url], store) as shared:
        upstream = shared.url(files.url)
        for k in counts:
            with contextlib.ExitStack() as stack:  # one proxy per worker: its cap is the proxy's own
                nodes = [stack.enter_context(NetModel([upstream], node)) for _ in range(k)]
                urls = [n.url(upstream) for n in nodes]
                cache = args.work / f"cache-{k}"
                shutil.rmtree(cache, ignore_errors=True)
                seconds, published = run_team(data, urls, cache, args.jobs)
                shutil.rmtree(cache, ignore_errors=True)
            limit = min(k * nic, store.aggregate_rate)
            rows.append(Row(k, seconds, data.bytes / seconds, limit, published))
            _log(f"{k} worker(s): {seconds:.1f} s, {data.bytes / seconds / MB:.1f} MB/s")
    print(table(rows, data, store, node))
    out = args.work / f"workers-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(
        json.dumps({"caps": asdict(store), "nic": nic, "rows": [asdict(r) for r in rows]}, indent=1)
    )
    return 0 if all(r.published for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
