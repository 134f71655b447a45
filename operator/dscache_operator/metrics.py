"""Prometheus metrics of the operator (served on --metrics-port)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

INSTALLS_STARTED = Counter("dscache_installs_started_total", "Installer Jobs created.")
INSTALLS_SUCCEEDED = Counter("dscache_installs_succeeded_total", "Installer Jobs that completed.")
INSTALLS_FAILED = Counter("dscache_installs_failed_total", "Installer Jobs that failed.")
BYTES_INSTALLED = Counter("dscache_bytes_installed_total", "Bytes of versions installed by completed Jobs.")
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


def serve(port: int) -> None:
    start_http_server(port)
