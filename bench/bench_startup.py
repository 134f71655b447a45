"""Start-up benchmark (issue 16): how long `dscache install` takes from its process start to its first
request and to its first object GET, per source kind, through the network model.

    python bench/bench_startup.py [--rounds 5] [--src DIR ...] [--via S3,Hub,HTTP]

Each round runs `dscache install` of a small archives version (3 archives of about 5 MB) from the
HTTP file server, moto S3 (bench/s3front.py) and the fake Hub, through the network model of
bench/netmodel.py with its first-byte latency only (no bandwidth cap hides the client's own
start-up). The servers log each request's arrival on the system's monotonic clock, the one this
process reads just before it starts the installer, so the times are:

    first request   process start -> the first request any server saw (the listing, or the Hub's
                    revision lookup): the interpreter, dscache's imports, the remote's client
    first GET       process start -> the first GET of an archive (the worker pool's start,
                    a worker opening its remote)
    total           process start -> exit
    CPU             user + system time of the installer and its workers (less disturbed than the
                    times by other work on a shared machine)

Several checkouts (`--src`, default this one) alternate round by round, so a shared machine's load
falls on each alike; the median of the rounds is printed per checkout and source.
"""

from __future__ import annotations

import argparse
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
sys.path[:0] = [str(REPO), str(REPO / "initcontainer")]

from bench.bench_network import servers  # noqa: E402
from bench.contenders import ACCESS, BUCKET, Via  # noqa: E402
from bench.needs import require  # noqa: E402
from bench.netdata import Workload, prepare  # noqa: E402
from bench.netmodel import MB, Caps  # noqa: E402
from tests.servers.faults import Request  # noqa: E402

WORKLOAD = Workload("archives", 3, 5 * MB)


def _argv(src: Path, via: Via, endpoint: str, cache: Path) -> tuple[list[str], dict[str, str]]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env = {
        **keep,
        "PYTHONPATH": os.pathsep.join(str(src / p) for p in ("initcontainer", "operator", ".")),
        "AWS_CONFIG_FILE": str(cache.parent / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(cache.parent / "aws-credentials"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "HF_HOME": str(cache.parent / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",  # as bench_network.py runs every contender
    }
    key = WORKLOAD.key
    argv = [sys.executable, "-m", "dscache.cli.app", "install", "--cache", str(cache)]
    argv += ["--version", str(key)]
    if via == "S3":
        return [*argv, "--source", f"s3://{BUCKET}"], {**env, **ACCESS, "AWS_ENDPOINT_URL": endpoint}
    if via == "Hub":
        return [*argv, "--source", f"hf://datasets/bench/{WORKLOAD.name}"], {**env, "HF_ENDPOINT": endpoint}
    return [*argv, "--source", endpoint], env


def _first(requests: list[Request], gets: bool) -> float:
    """The arrival of the first request (of the first object GET, with `gets`)."""
    chosen = [r for r in requests if not gets or r.path.endswith(".tar.zst")]
    return min(r.began for r in chosen)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--src", type=Path, action="append", default=[], help="a checkout to run (repeatable)")
    p.add_argument("--via", default="HTTP,S3,Hub", help="comma-separated sources: HTTP, S3, Hub")
    p.add_argument("--trace", action="store_true", help="print every request of every run")
    p.add_argument("--latency-ms", type=float, default=20)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dscache-netbench")
    args = p.parse_args(argv)
    srcs = [s.resolve() for s in args.src] or [REPO]
    vias: list[Via] = []
    for name in (v.strip() for v in args.via.split(",") if v.strip()):
        if name not in ("HTTP", "S3", "Hub"):
            raise SystemExit(f"--via: unknown source {name} (known: HTTP, S3, Hub)")
        vias.append(name)
    if "S3" in vias:
        require({"moto": "the S3 server of --via S3"}, "bench_startup.py")
    data = prepare(args.work.resolve(), WORKLOAD)
    caps = Caps(conn_rate=0, latency=args.latency_ms / 1000, aggregate_rate=0)
    times: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    load = os.getloadavg()[0]
    with servers(data, caps) as bed, tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        for _ in range(args.rounds):
            for via in vias:
                for src in srcs:
                    cache = Path(tmp) / "cache"
                    shutil.rmtree(cache, ignore_errors=True)
                    cmd, env = _argv(src, via, bed.endpoints.of(via), cache)
                    for log in bed.logs:
                        log.clear()
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    start = time.monotonic()
                    out = subprocess.run(cmd, env=env, check=False, capture_output=True, text=True)
                    if out.returncode != 0:
                        raise SystemExit(f"{src} via {via} failed: {out.stderr.strip()[-600:]}")
                    end = time.monotonic()
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                    requests = [r for log in bed.logs for r in log.all()]
                    if args.trace:
                        for r in sorted(requests, key=lambda r: r.began):
                            print(f"{r.began - start:.3f} {r.method} {r.path} {r.query[:40]} {r.range}")
                    first, get = _first(requests, False), _first(requests, True)
                    times.setdefault((str(src), via), []).append(
                        (first - start, get - start, end - start, cpu)
                    )
    print(f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end; {args.rounds} rounds, medians")
    print("| checkout | via | first request s | first GET s | total s | CPU s |")
    print("|---|---|---:|---:|---:|---:|")
    for (src, name), rows in times.items():
        med = [statistics.median(col) for col in zip(*rows, strict=True)]
        print(f"| {src} | {name} | {med[0]:.3f} | {med[1]:.3f} | {med[2]:.3f} | {med[3]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
