"""Network benchmark (issue 16): dscache and the tools users would otherwise run, all through one
model of a cloud object store's network, on three workloads, in one table per workload.

    python bench/bench_network.py [--small] [--work DIR] [--workloads large,archives,small]
                                  [--conn-mbps 50] [--latency-ms 20] [--aggregate-mbps 1000] ...

The model (bench/netmodel.py, a Go proxy on 127.0.0.1) caps every connection at --conn-mbps, holds
every response's first byte until --latency-ms after its request, and caps all connections together
at --aggregate-mbps (MB = 10^6 bytes). Every contender reads through it in the same run: the HTTP
file server (tests/servers/files.py) for curl, molmospaces-resources and dscache's HTTP remote, moto
S3 (tests/servers/s3.py, its object reads served from disk: bench/s3front.py) for rclone, the AWS CLI
and dscache, the fake Hub (tests/servers/hub.py) for huggingface_hub and dscache. Contenders and
their pinned versions: bench/contenders.py; workloads: bench/netdata.py (data generated once into
--work and reused); the two limits each time is compared with: bench/netreport.py.

First the model's own ceiling is measured and printed (its caps off, --ceiling-streams curl
downloads to /dev/null, and the same without the proxy): read every result against it, since on a
2-core machine the proxy, the servers and the client share the CPU.

s5cmd is not run: it cannot be installed here (contenders.md). Its published figures, quoted in its
README from J. Robinson, "s5cmd for high performance object storage" (2020): downloads saturating a
40 Gbps link (~4.3 GB/s) where aws-cli reached 375 MB/s and s3cmd 85 MB/s. Its defaults (v2.3.0,
command/app.go and cp.go): 256 workers, 5 concurrent 50 MiB parts per object.

Each run starts from a flushed disk (sync) and writes into a fresh directory; runs of the small-files
workload keep their output until the workload ends (deleting 20,000 files makes the next run's file
creation slower on ext4, see bench_install.py), the others delete it at once. A run's output is
checked (file count and bytes) and the table says so if it is wrong. With --rounds N every contender
runs N times, the rounds interleaved (each round starting one contender later), and the table shows
the median and the fastest and slowest round: on a shared machine one run's time moves by more than
the gaps between contenders. The tables are also written as
JSON to <work>/results-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "initcontainer")]

from bench.contenders import (  # noqa: E402
    BUCKET,
    CONTENDERS,
    Command,
    Contender,
    Endpoints,
    Run,
    aws_binary,
    hf_python,
    rclone_binary,
    with_sources,
)
from bench.needs import require  # noqa: E402
from bench.netdata import Dataset, Workload, prepare  # noqa: E402
from bench.netmodel import MB, Caps, Ceiling, NetModel, ceiling, proxy_binary  # noqa: E402
from bench.netreport import Result, aggregate_limit, median_result, table  # noqa: E402
from bench.s3front import FastS3  # noqa: E402
from tests.servers.faults import Fault, RequestLog  # noqa: E402
from tests.servers.files import FileServer  # noqa: E402
from tests.servers.httpbase import Body  # noqa: E402
from tests.servers.hub import FakeHub, _HubHandler  # noqa: E402

KB = 1000


class _AbsoluteRedirects(_HubHandler):
    """Redirects to the fake CDN on another origin, as the real Hub's are: huggingface_hub follows a
    redirect of its metadata HEAD within one origin, and then misses the X-Repo-Commit of the first
    answer. The model gives the Hub a second listener for that."""

    owner: _Hub

    def send(
        self,
        status: int,
        headers: dict[str, str],
        body: Body = b"",
        fault: Fault | None = None,
        head_length: int | None = None,
    ) -> None:
        location = headers.get("Location", "")
        if location.startswith("/cdn/") and self.owner.cdn:
            headers = {**headers, "Location": f"{self.owner.cdn}{location}"}
        super().send(status, headers, body, fault, head_length)


class _Hub(FakeHub):
    """The fake Hub, announcing the model's address in the absolute URLs it builds."""

    handler = _AbsoluteRedirects
    public: str | None = None
    cdn: str | None = None

    @property
    def url(self) -> str:
        return self.public or f"http://127.0.0.1:{self.port}"


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _slug(contender: Contender) -> str:
    return "".join(c if c.isalnum() else "-" for c in f"{contender.name}-{contender.via}".lower())


@dataclass(frozen=True)
class Bed:
    """The servers of one workload, behind the model."""

    endpoints: Endpoints
    model: NetModel
    logs: tuple[RequestLog, ...]


@contextlib.contextmanager
def servers(data: Dataset, caps: Caps) -> Iterator[Bed]:
    """The three test servers holding `data`, and the model in front of them."""
    hub_root = Path(tempfile.mkdtemp(prefix="bench-hub-", dir=data.remote.parent))
    with FileServer(data.remote) as files, FastS3() as s3, _Hub(hub_root) as hub:
        started = time.perf_counter()
        s3.seed(BUCKET, data.remote)
        hub.commit_dir(f"bench/{data.workload.name}", data.remote)
        _log(f"seeded S3 and the Hub in {time.perf_counter() - started:.0f} s")
        upstreams = [files.url, s3.endpoint, hub.url, hub.url]
        try:
            with NetModel(upstreams, caps) as model:
                hub.public, hub.cdn = model.url(upstreams[2]), model.url(upstreams[2], 1)
                endpoints = Endpoints(model.url(files.url), model.url(s3.endpoint), hub.public)
                yield Bed(endpoints, model, (files.log, s3.log, hub.log))
        finally:
            shutil.rmtree(hub_root, ignore_errors=True)


def timed(cmd: Command, log: Path, timeout: float) -> tuple[float, int]:
    """(wall seconds, exit code) of one contender, from a flushed disk; output to `log`."""
    os.sync()
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd.argv, env=cmd.env, stdout=out, stderr=out, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = -1
        return time.perf_counter() - start, code


def _data_files(root: Path) -> Iterator[Path]:
    """Regular files under `root`, skipping hidden names (tools' bookkeeping) and symlinks."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = Path(dirpath) / name
            if not name.startswith(".") and not path.is_symlink():
                yield path


def check_output(out: Path, data: Dataset, extracts: bool) -> str:
    """ "ok", or one phrase on how the output of a run differs from the dataset.

    Downloads (files, or archives not extracted) must hold every object with its size, at
    `out/<object>` or `out/<dt>/<src>/<ver>/<object>`; extracted archives must hold the dataset's bytes
    (within 1 MB, for the tools' own small files) outside hidden names, archives and symlinks.
    """
    if data.workload.layout == "files" or not extracts:
        base = out / data.workload.key.rel
        if not base.is_dir():
            base = out
        wrong = [
            o
            for o in data.objects
            if not (base / o).is_file() or (base / o).stat().st_size != (data.version_dir / o).stat().st_size
        ]
        return (
            f"BAD: {len(wrong)} of {len(data.objects)} objects missing or of the wrong size"
            if wrong
            else "ok"
        )
    size = sum(p.stat().st_size for p in _data_files(out) if not p.name.endswith(".tar.zst"))
    if not data.extracted <= size <= data.extracted + MB:
        return f"BAD: {size:,} B extracted (want {data.extracted:,} B)"
    return "ok"


def run_workload(
    data: Dataset, caps: Caps, contenders: list[Contender], args: argparse.Namespace, runs: Path
) -> list[Result]:
    keep = data.workload.kind == "small"
    chosen = [c for c in contenders if data.workload.layout in c.layouts]
    each: list[list[Result]] = [[] for _ in chosen]
    with servers(data, caps) as bed:
        for round_no in range(args.rounds):
            # Each round starts one contender later, so none always runs first (or last) in a
            # machine whose load drifts.
            for n in [(round_no + i) % len(chosen) for i in range(len(chosen))]:
                each[n].append(
                    _run_one(data, chosen[n], f"{round_no:02d}-{n:02d}", bed, args=args, runs=runs)
                )
    if keep:
        shutil.rmtree(runs / data.workload.name)
    return [median_result(results) for results in each]


def _run_one(
    data: Dataset, contender: Contender, tag: str, bed: Bed, *, args: argparse.Namespace, runs: Path
) -> Result:
    """One contender's run through `bed`: timed, checked, its output deleted unless the workload keeps
    its output (small files) to the end."""
    keep = data.workload.kind == "small"
    out = runs / data.workload.name / f"{tag}-{_slug(contender)}"
    out.mkdir(parents=True)
    endpoint = bed.endpoints.of(contender.via)
    run = Run(data, endpoint, out, args.floor_streams, args.dscache_jobs, contender.src or REPO)
    cmd = contender.build(run)
    for log in bed.logs:
        log.clear()
    bed.model.reset()
    seconds, code = timed(cmd, out.parent / f"{out.name}.log", args.timeout)
    stats = bed.model.stats()
    check = check_output(out, data, contender.extracts) if code == 0 else f"FAILED (exit {code})"
    if code != 0:
        tail = (out.parent / f"{out.name}.log").read_text(errors="replace")[-600:]
        _log(f"{contender.name} via {contender.via} failed:\n{tail}")
    delivers = (
        "files" if data.workload.layout == "files" else ("extracted" if contender.extracts else "archives")
    )
    _log(f"{data.workload.name}: {contender.name} via {contender.via}: {seconds:.1f} s, {check}")
    if not keep:
        shutil.rmtree(out)
    return Result(contender.name, contender.via, delivers, seconds, stats, check)


def _ceiling(work: Path, size_mb: int, streams: int) -> Ceiling:
    path = work / f"ceiling-{size_mb}MB.bin"
    if not path.exists() or path.stat().st_size != size_mb * MB:
        with open(path.with_suffix(".partial"), "wb") as fh:
            for _ in range(size_mb):
                fh.write(os.urandom(MB))
        path.with_suffix(".partial").rename(path)
    with FileServer(work) as server:
        return ceiling(server.url, path.name, size_mb * MB, streams)


def _workloads(args: argparse.Namespace) -> list[Workload]:
    every = {
        "large": Workload("large", args.large_count, args.large_mb * MB),
        "archives": Workload("archives", args.archives, args.archive_mb * MB),
        "small": Workload("small", args.small_count, args.small_kb * KB),
    }
    names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in names if w not in every]
    if unknown:
        raise SystemExit(f"--workloads: unknown workload {', '.join(unknown)} (known: {', '.join(every)})")
    return [every[w] for w in names]


def _machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dscache-netbench",
                   help="work dir: generated data (kept and reused), runs, results")  # fmt: skip
    p.add_argument("--small", action="store_true",
                   help="development sizes instead of the size flags: 4 x 32 MB, 8 x 8 MB archives, "
                        "1,000 x 8 KB")  # fmt: skip
    p.add_argument("--workloads", default="large,archives,small", help="comma-separated subset")
    p.add_argument(
        "--contenders", default="", help="only contenders whose name contains one of these (comma-separated)"
    )
    p.add_argument("--conn-mbps", type=float, default=50, help="per-connection download cap, MB/s (0: none)")
    p.add_argument("--latency-ms", type=float, default=20, help="first-byte latency per request, ms")
    p.add_argument(
        "--aggregate-mbps", type=float, default=1000, help="cap of all connections, MB/s (0: none)"
    )
    p.add_argument("--large-count", type=int, default=4)
    p.add_argument("--large-mb", type=int, default=512)
    p.add_argument("--archives", type=int, default=60)
    p.add_argument("--archive-mb", type=int, default=50, help="about this many MB per archive (>= 5)")
    p.add_argument("--small-count", type=int, default=20_000)
    p.add_argument("--small-kb", type=int, default=8)
    p.add_argument("--floor-streams", type=int, default=16, help="downloads the curl floor runs at once")
    p.add_argument("--src", type=Path, action="append", default=[], metavar="DIR",
                   help="run dscache from this checkout (repeatable: one row per checkout, named by its "
                        "directory; default: this one), e.g. a `git archive` of a base commit")  # fmt: skip
    p.add_argument("--dscache-jobs", type=int, default=None, help="dscache --jobs (default: its own)")
    p.add_argument("--ceiling-streams", type=int, default=16)
    p.add_argument("--ceiling-mb", type=int, default=256, help="size of each ceiling download")
    p.add_argument("--timeout", type=float, default=1800, help="seconds before a contender's run is killed")
    p.add_argument("--rounds", type=int, default=1,
                   help="runs of every contender per workload, interleaved; the table shows the median "
                        "and the fastest and slowest round")  # fmt: skip
    args = p.parse_args(argv)
    if args.small:
        args.large_count, args.large_mb = 4, 32
        args.archives, args.archive_mb = 8, 8
        args.small_count, args.small_kb = 1000, 8
        args.ceiling_mb = 64
    if args.archive_mb < 5:
        p.error("--archive-mb must be at least 5")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require({"moto": "the S3 server of the S3 rows"}, "bench_network.py")
    for tool in ("curl", "zstd", "tar"):
        if shutil.which(tool) is None:
            raise SystemExit(f"the benchmark needs {tool} on PATH")
    caps = Caps(args.conn_mbps * MB, args.latency_ms / 1000, args.aggregate_mbps * MB)
    workloads = _workloads(args)
    wanted = [w.strip().lower() for w in args.contenders.split(",") if w.strip()]
    every = with_sources(CONTENDERS, [s.resolve() for s in args.src])
    contenders = [c for c in every if not wanted or any(w in c.name.lower() for w in wanted)]
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    proxy_binary()
    if any(c.name.startswith("rclone") for c in contenders):
        rclone_binary()
    if any(c.name.startswith("aws") for c in contenders):
        aws_binary()
    if any(c.name.startswith("hf") for c in contenders):
        hf_python()
    started = datetime.now(UTC)
    load_start = os.getloadavg()[0]
    _log(f"ceiling: {args.ceiling_streams} curl streams of {args.ceiling_mb} MB, caps off")
    ceil = _ceiling(work, args.ceiling_mb, args.ceiling_streams)
    runs = work / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    out = work / f"results-{started:%Y%m%dT%H%M%S}.json"
    report: list[str] = [
        f"# dscache network benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"model: {caps.describe()}",
        f"model ceiling (caps off, {ceil.streams} curl streams to /dev/null): "
        f"{ceil.through_model / MB:,.0f} MB/s through the proxy, {ceil.direct / MB:,.0f} MB/s direct",
    ]
    dump: dict[str, object] = {"started": started.isoformat(), "caps": asdict(caps), "ceiling": asdict(ceil),
                               "workloads": {}}  # fmt: skip
    for workload in workloads:
        data_free = shutil.disk_usage(work).free
        _log(f"preparing {workload.describe()} ({data_free / 1e9:.0f} GB free)")
        data = prepare(work, workload)
        need = 2 * data.bytes + 2 * data.extracted  # the S3 and Hub copies, and one run's output
        if shutil.disk_usage(work).free < need:
            raise SystemExit(f"{workload.name}: needs about {need / 1e9:.1f} GB free under {work}")
        results = run_workload(data, caps, contenders, args, runs)
        agg = aggregate_limit(data.bytes, caps)
        report += [
            "",
            f"## {workload.describe()}: {len(data.objects):,} objects, {data.bytes / MB:,.0f} MB "
            f"({data.extracted / MB:,.0f} MB extracted); aggregate limit {agg:.1f} s",
            "",
            table(results, data.bytes, caps),
        ]
        dump["workloads"][workload.name] = {  # type: ignore[index]
            "bytes": data.bytes, "objects": len(data.objects), "results": [asdict(r) for r in results]
        }  # fmt: skip
        out.write_text(json.dumps(dump, indent=2))
        _log("\n".join(report[-3:]))
    report += [
        "",
        "x agg limit: time / (workload bytes / aggregate cap). x own limit: time / ((requests x latency +",
        "MB down / per-connection cap) / streams), the best the client's own number of streams allows.",
        "streams: connections moving response bytes at once, the mean an average byte saw; conns: most",
        "open at once.",
        "s5cmd (not installable here) is quoted at ~4.3 GB/s on a 40 Gbps link where aws-cli reached",
        "375 MB/s (its README, after J. Robinson 2020); defaults 256 workers x 5 parts of 50 MiB.",
    ]
    machine = f"{_machine()}, load average {load_start:.1f} at start and {os.getloadavg()[0]:.1f} at end"
    report[1] = f"machine: {machine}"
    dump["machine"] = machine
    print("\n".join(report))
    out.write_text(json.dumps(dump, indent=2))
    _log(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
