"""Prometheus metrics of the operator, served on --metrics-port (prometheus_client's default registry).

Counters (the reconciling replica's, i.e. the peering leader's; they restart at 0 with the process):
- `dscache_installs_total{result="succeeded"|"failed"}`: installer Jobs that finished, by outcome;
- `dscache_installed_bytes_total`: bytes of the versions those succeeded Jobs installed;
- `dscache_installs_started_total`, `dscache_install_duration_seconds`, `dscache_admission_seconds`,
  `dscache_admission_api_reads_total`, `dscache_queued_resources` as before;
- `dscache_build_info{version}`: 1, the dscache version this process runs.

Per DatasetCache (labels `namespace`, `name`), read from its `.status` at scrape time:
- `dscache_cache_ready`: 1 if the Ready condition is True, else 0;
- `dscache_cache_versions_ready`: installed versions of the current spec (`versionsReady` N of N/M);
- `dscache_cache_installed_bytes`: bytes of those versions on the volume (sum of `installed[].bytes`);
- `dscache_cache_bytes_in_flight`: bytes the running install has still to transfer
  (`progress.bytesTotal - progress.bytesDone` while the phase is Installing; 0 otherwise).

The per-cache gauges come from the statuses the admission server's watch holds (`CacheIndex`, set
with `set_cache_source`), not from kopf's handlers: those run on the peering leader only, and a
replica that stops leading (a newer one starts: newest wins) would keep exporting what it last saw.
Every replica's watch follows every change, a deleted resource leaves the index (and so /metrics)
with its DELETED event, and a relist drops what the listing lacks: no stale series. Without the
webhook (no admission server) these gauges are absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dscache import __version__

INSTALLS_STARTED = Counter("dscache_installs_started_total", "Installer Jobs created.")
INSTALLS = Counter("dscache_installs_total", "Installer Jobs that finished, by result.", ["result"])
INSTALLS_SUCCEEDED = INSTALLS.labels("succeeded")
INSTALLS_FAILED = INSTALLS.labels("failed")
INSTALLED_BYTES = Counter("dscache_installed_bytes_total", "Bytes of versions installed by completed Jobs.")
BUILD_INFO = Info("dscache_build", "The dscache version of this operator.")
BUILD_INFO.info({"version": __version__})
INSTALL_DURATION = Histogram(
    "dscache_install_duration_seconds",
    "Wall time of installer Jobs, start to completion.",
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600),
)
ADMISSION_SECONDS = Histogram(
    "dscache_admission_seconds",
    "Time to answer one admission review, per webhook (mutate-pods, validate-datasetcaches).",
    ["webhook"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ADMISSION_API_READS = Counter(
    "dscache_admission_api_reads_total",
    "API requests made while admitting (an index miss, or the index not listed yet); normally none.",
)
QUEUED = Gauge("dscache_queued_resources", "DatasetCaches waiting for another writer on their claim.")

_queued: set[tuple[str, str]] = set()


def set_queued(namespace: str, name: str, queued: bool) -> None:
    """Track which resources are Queued; the gauge is the size of that set."""
    key = (namespace, name)
    if queued:
        _queued.add(key)
    else:
        _queued.discard(key)
    QUEUED.set(len(_queued))


@dataclass(frozen=True)
class CacheSample:
    """The per-cache gauges' values for one status (see the module docstring)."""

    ready: int
    versions_ready: int
    installed_bytes: int
    bytes_in_flight: int


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def cache_sample(status: Mapping[str, Any]) -> CacheSample:
    """Pure: the gauges of a DatasetCache from its `.status` (missing or odd fields count as 0)."""
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    installed = status.get("installed") or []
    counted = str(status.get("versionsReady") or "").partition("/")[0]
    versions = int(counted) if counted.isdigit() else len(installed)
    progress = status.get("progress") or {}
    in_flight = 0
    if status.get("phase") == "Installing":
        in_flight = max(0, _int(progress.get("bytesTotal")) - _int(progress.get("bytesDone")))
    return CacheSample(
        ready=int(ready),
        versions_ready=versions,
        installed_bytes=sum(_int(v.get("bytes")) for v in installed),
        bytes_in_flight=in_flight,
    )


CacheStatuses = Callable[[], Iterable[tuple[str, str, Mapping[str, Any]]]]
"""(namespace, name, status) of every DatasetCache known; called from the scrape's thread."""

_GAUGES = (
    ("dscache_cache_ready", "1 if the DatasetCache's Ready condition is True, else 0.", "ready"),
    (
        "dscache_cache_versions_ready",
        "Versions of the current spec installed (N of status.versionsReady N/M).",
        "versions_ready",
    ),
    (
        "dscache_cache_installed_bytes",
        "Bytes of the installed versions on the volume (sum of status.installed[].bytes).",
        "installed_bytes",
    ),
    (
        "dscache_cache_bytes_in_flight",
        "Bytes the running install has still to transfer (status.progress); 0 when none runs.",
        "bytes_in_flight",
    ),
)


class CacheCollector(Collector):
    """The per-cache gauges, computed when scraped from what `source` returns (none while unset)."""

    def __init__(self) -> None:
        self.source: CacheStatuses | None = None

    def collect(self) -> Iterator[Metric]:
        families = [GaugeMetricFamily(n, h, labels=["namespace", "name"]) for n, h, _ in _GAUGES]
        source = self.source
        for namespace, name, status in source() if source is not None else ():
            sample = cache_sample(status)
            for family, (_, _, field) in zip(families, _GAUGES, strict=True):
                family.add_metric([namespace, name], getattr(sample, field))
        yield from families

    def describe(self) -> Iterator[Metric]:
        return iter(())  # computed at scrape time: no fixed series to describe


CACHES = CacheCollector()
REGISTRY.register(CACHES)


def set_cache_source(source: CacheStatuses | None) -> None:
    """Where the per-cache gauges come from (the admission server's index), or None: no gauges."""
    CACHES.source = source


def serve(port: int, addr: str = "0.0.0.0") -> WSGIServer:
    """Serve /metrics on `addr`:`port` from a daemon thread; the server (`shutdown()` stops it)."""
    server, _ = start_http_server(port, addr)
    return server
