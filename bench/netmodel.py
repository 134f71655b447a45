"""The benchmark's network model: a proxy on 127.0.0.1 that caps each connection's download rate,
delays each response's first byte, and caps all connections together (bench/netproxy/main.go).

    with NetModel(["http://127.0.0.1:8000"], Caps(conn_rate=50e6, latency=0.02, aggregate_rate=1e9)) as m:
        url = m.url("http://127.0.0.1:8000")          # the same server, through the model
        (an upstream given twice gets two listeners: `m.url(u, 1)` is the second, a second origin)
        m.reset(); ...; m.stats()                     # connections, requests and bytes of one run

The proxy is a small Go program built from the source in the repo on first use and cached outside it,
keyed by the hash of its source (`~/.cache/dscache-bench/netproxy-<hash>/netproxy`); it needs `go` on
PATH (standard library only, so no module download).

Why Go and not Python (measured on the 2-core benchmark machine, shared with other jobs, caps off,
1, 8 and 16 curl streams of a 512 MB file from tests/servers/files.py to /dev/null): direct
1.2-1.7 GB/s; through this proxy 0.8-1.1 GB/s; through an asyncio proxy with 1 MiB reads 0.6-0.7
GB/s (a Go proxy splicing without pacing was no faster, within the noise). The default aggregate cap
is 1 GB/s, so a Python proxy would itself have been the limit it models. `ceiling()` measures the
same thing at the start of every benchmark run, so results are read against it.

Why not an existing tool: `tc netem` on loopback needs root and would slow every other process's
loopback traffic on a shared machine; toxiproxy has per-connection bandwidth and latency toxics but no
cap shared by all connections, and its latency delays every chunk of data rather than each response's
first byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

SOURCE = Path(__file__).resolve().parent / "netproxy"
CACHE = Path(os.environ.get("DSCACHE_BENCH_CACHE", Path.home() / ".cache" / "dscache-bench"))
MB = 1_000_000
"""Rates are in decimal megabytes per second, as cloud object stores state them."""


@dataclass(frozen=True)
class Caps:
    """The model. Rates in bytes per second (0: no cap), latency in seconds."""

    conn_rate: float = 50 * MB
    latency: float = 0.020
    aggregate_rate: float = 1000 * MB

    def describe(self) -> str:
        def rate(r: float) -> str:
            return f"{r / MB:g} MB/s" if r else "off"

        return (
            f"per connection {rate(self.conn_rate)}, first byte {self.latency * 1000:g} ms, "
            f"aggregate {rate(self.aggregate_rate)}"
        )


NO_CAPS = Caps(conn_rate=0, latency=0, aggregate_rate=0)


@dataclass(frozen=True)
class Stats:
    """What passed through the model since the last reset."""

    connections: int
    """Connections opened."""
    peak_connections: int
    """Most connections open at once."""
    peak_streams: int
    """Most streams at once: connections that sent response bytes in the last 100 ms (sampled every
    10 ms), the connections a client downloads over, without the ones it keeps idle."""
    mean_streams: float
    """The streams an average byte shared the link with: their count per sample, weighted by the
    bytes of the sample (short bursts of small answers hardly count)."""
    requests: int
    bytes_down: int
    bytes_up: int


def proxy_binary() -> Path:
    """The built proxy, building it (about a second with a warm Go cache) if its source changed.

    Raises SystemExit with one line if `go` is missing or the build fails.
    """
    digest = hashlib.sha256()
    for path in sorted(SOURCE.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    target = CACHE / f"netproxy-{digest.hexdigest()[:16]}" / "netproxy"
    if target.exists():
        return target
    go = shutil.which("go")
    if go is None:
        raise SystemExit("the network model needs the Go toolchain (`go`) on PATH to build bench/netproxy")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    done = subprocess.run(
        [go, "build", "-trimpath", "-o", str(partial), "."],
        cwd=SOURCE,
        capture_output=True,
        text=True,
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"building bench/netproxy failed: {done.stderr.strip()}")
    partial.rename(target)
    return target


def _hostport(url: str) -> str:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise ValueError(f"the network model only fronts servers on 127.0.0.1, not {url}")
    return f"127.0.0.1:{parts.port}"


class NetModel:
    """The proxy in front of `upstreams` (base URLs on 127.0.0.1), with `caps`, while in a `with`."""

    def __init__(self, upstreams: list[str], caps: Caps) -> None:
        self.caps = caps
        self._upstreams = [_hostport(u) for u in upstreams]
        self._listen: list[tuple[str, str]] = []  # (upstream, listener), in the order given
        self._admin = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> NetModel:
        cmd = [
            str(proxy_binary()),
            f"-conn-rate={self.caps.conn_rate:.0f}",
            f"-aggregate-rate={self.caps.aggregate_rate:.0f}",
            f"-latency={self.caps.latency * 1e6:.0f}us",
        ]
        for upstream in self._upstreams:
            cmd += ["-upstream", upstream]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            kind, *rest = line.split()
            if kind == "listen":
                self._listen.append((rest[0], rest[1]))
            elif kind == "admin":
                self._admin = rest[0]
            elif kind == "ready":
                return self
        self._proc.wait()
        raise SystemExit(f"the network model proxy exited with code {self._proc.returncode} at start")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def url(self, upstream: str, nth: int = 0) -> str:
        """`upstream` (a base URL given at construction) as reached through the model: through the
        listener of its `nth` mention in the upstream list."""
        hostport = _hostport(upstream)
        listener = [addr for up, addr in self._listen if up == hostport][nth]
        return urlsplit(upstream)._replace(netloc=listener).geturl()

    def stats(self) -> Stats:
        with urllib.request.urlopen(f"http://{self._admin}/stats", timeout=10) as resp:
            raw = json.load(resp)
        return Stats(
            connections=raw["connections"],
            peak_connections=raw["peak_connections"],
            peak_streams=raw["peak_streams"],
            mean_streams=raw["mean_streams"],
            requests=raw["requests"],
            bytes_down=raw["bytes_down"],
            bytes_up=raw["bytes_up"],
        )

    def reset(self) -> None:
        """Start counting afresh (the peak restarts from the connections open now)."""
        req = urllib.request.Request(f"http://{self._admin}/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass


@dataclass(frozen=True)
class Ceiling:
    """Rates in bytes per second of `streams` concurrent curl downloads to /dev/null."""

    streams: int
    through_model: float
    direct: float


def curl_rate(url: str, streams: int, size: int) -> float:
    """Bytes per second of `streams` concurrent `curl URL > /dev/null` of a `size`-byte file."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(["curl", "-sf", "-o", "/dev/null", url], stderr=subprocess.DEVNULL)
        for _ in range(streams)
    ]
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - start
    if any(codes):
        raise SystemExit(f"ceiling measurement: curl of {url} failed (exit codes {codes})")
    return streams * size / elapsed


def ceiling(server_url: str, path: str, size: int, streams: int, rounds: int = 2) -> Ceiling:
    """The model's own limit: `streams` curl downloads of `path` (`size` bytes) on `server_url`
    through the proxy with every cap off, and the same without the proxy; alternated `rounds` times,
    the best of each (on a shared machine the best round is the least disturbed one)."""
    through = direct = 0.0
    with NetModel([server_url], NO_CAPS) as model:
        for _ in range(rounds):
            through = max(through, curl_rate(f"{model.url(server_url)}/{path}", streams, size))
            direct = max(direct, curl_rate(f"{server_url}/{path}", streams, size))
    return Ceiling(streams, through, direct)
