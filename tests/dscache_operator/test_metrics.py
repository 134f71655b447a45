"""The operator's /metrics, scraped over HTTP from the server it runs, after a reconcile against the
in-memory API: Prometheus names and labels, counters by result, per-DatasetCache gauges that follow
the status (progress, Ready) and disappear with the resource; and the pure status-to-gauges rule."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dscache import __version__
from dscache_operator import metrics
from dscache_operator.admissionserver import AdmissionServer, ServerApi
from dscache_operator.kubeapi import dsc_path
from tests.dscache_operator.fakekube import FakeKube
from tests.dscache_operator.test_admissionserver import free_port, settings
from tests.dscache_operator.test_reconcile import NS, World, cache, claim, run

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]
CACHE_GAUGES = (
    "dscache_cache_ready",
    "dscache_cache_versions_ready",
    "dscache_cache_installed_bytes",
    "dscache_cache_bytes_in_flight",
)


class Scraper:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"

    def text(self) -> str:
        with urllib.request.urlopen(self.url, timeout=5) as resp:
            return str(resp.read().decode())

    def series(self) -> Series:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(self.text())
            for s in family.samples
        }

    def cache(self, name: str) -> dict[str, float]:
        """The per-cache gauges of ml/<name> as scraped."""
        key = (("name", name), ("namespace", NS))
        return {n: v for (n, labels), v in self.series().items() if n in CACHE_GAUGES and labels == key}

    def wait_cache(self, name: str, expected: dict[str, float]) -> None:
        """The watch delivers status changes a few milliseconds after they are written."""
        deadline = time.monotonic() + 5
        while (got := self.cache(name)) != expected:
            assert time.monotonic() < deadline, f"{name}: {got} != {expected}"
            time.sleep(0.02)


@pytest.fixture
def world() -> Iterator[World]:
    """A reconciler's world, watched by an admission server (whose index feeds the per-cache gauges)."""
    world = World(claim(), cache())

    async def connect() -> ServerApi:
        return world.kube

    server = AdmissionServer(settings(), connect)
    server.start()
    try:
        yield world
    finally:
        server.stop()


@pytest.fixture
def scraper() -> Iterator[Scraper]:
    port = free_port()
    server = metrics.serve(port, "127.0.0.1")
    try:
        yield Scraper(port)
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_endpoint_after_an_install_and_a_deletion(world: World, scraper: Scraper) -> None:
    before = scraper.series()
    assert before[("dscache_build_info", (("version", __version__),))] == 1.0
    succeeded = ("dscache_installs_total", (("result", "succeeded"),))
    failed = ("dscache_installs_total", (("result", "failed"),))
    installed_bytes = ("dscache_installed_bytes_total", ())
    assert {succeeded, failed, installed_bytes} <= before.keys()  # exported at 0 from the start

    world.reconcile()  # the installer Job is created: Installing
    job_name = world.install_job()
    scraper.wait_cache(
        "objs",
        {
            "dscache_cache_ready": 0.0,
            "dscache_cache_versions_ready": 0.0,
            "dscache_cache_installed_bytes": 0.0,
            "dscache_cache_bytes_in_flight": 0.0,
        },
    )
    # The installer's progress report (its own status patch) while it copies.
    progress = {"bytesDone": 1000, "bytesTotal": 4096, "archivesDone": 1, "archivesTotal": 4}
    run(world.kube.patch_status(NS, "objs", {"progress": progress}))
    scraper.wait_cache(
        "objs",
        {
            "dscache_cache_ready": 0.0,
            "dscache_cache_versions_ready": 0.0,
            "dscache_cache_installed_bytes": 0.0,
            "dscache_cache_bytes_in_flight": 3096.0,
        },
    )
    # Done: the installer reports what it installed, the Job completes, the reconciler marks Ready.
    installed = [
        {"dataType": "objects", "source": "thor", "version": "v1", "files": 3, "bytes": 4096},
    ]
    done = {"bytesDone": 4096, "bytesTotal": 4096, "archivesDone": 4, "archivesTotal": 4}
    run(
        world.kube.patch_status(
            NS, "objs", {"installed": installed, "versionsReady": "1/1", "size": "4 KiB", "progress": done}
        )
    )
    run(world.reconciler.job_changed(world.finish(job_name, "Complete"), deleted=False))
    assert world.status()["phase"] == "Ready"
    scraper.wait_cache(
        "objs",
        {
            "dscache_cache_ready": 1.0,
            "dscache_cache_versions_ready": 1.0,
            "dscache_cache_installed_bytes": 4096.0,
            "dscache_cache_bytes_in_flight": 0.0,
        },
    )
    after = scraper.series()
    assert after[succeeded] - before[succeeded] == 1.0
    assert after[failed] - before[failed] == 0.0
    assert after[installed_bytes] - before[installed_bytes] == 4096.0
    text = scraper.text()
    assert "# TYPE dscache_installs_total counter" in text
    assert "# TYPE dscache_cache_ready gauge" in text

    world.kube.remove(dsc_path(NS, "objs"))  # deleted (its finalizer done): no stale series
    scraper.wait_cache("objs", {})


def _status(**fields: Any) -> dict[str, Any]:
    return fields


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, metrics.CacheSample(0, 0, 0, 0)),
        (
            _status(
                phase="Ready",
                conditions=[{"type": "Ready", "status": "True"}, {"type": "Installing", "status": "False"}],
                installed=[{"bytes": 10}, {"bytes": 32}],
                versionsReady="2/3",
                progress={"bytesDone": 5, "bytesTotal": 9},
            ),
            metrics.CacheSample(1, 2, 42, 0),
        ),
        (  # a new spec installing while the old versions' report is still there
            _status(
                phase="Installing",
                conditions=[{"type": "Ready", "status": "False"}],
                installed=[{"bytes": 10}],
                progress={"bytesDone": 5, "bytesTotal": 9},
            ),
            metrics.CacheSample(0, 1, 10, 4),
        ),
        (  # Ready by phase but not by condition: the condition decides
            _status(phase="Ready", conditions=[{"type": "Ready", "status": "Unknown"}]),
            metrics.CacheSample(0, 0, 0, 0),
        ),
        (  # odd values written by hand count as 0
            _status(phase="Installing", installed=[{"bytes": "x"}], progress={"bytesDone": None}),
            metrics.CacheSample(0, 1, 0, 0),
        ),
    ],
)
def test_cache_sample_from_status(status: dict[str, Any], expected: metrics.CacheSample) -> None:
    assert metrics.cache_sample(status) == expected


def test_no_cache_gauges_without_a_source(scraper: Scraper) -> None:
    metrics.set_cache_source(None)
    assert not any(name in CACHE_GAUGES for name, _ in scraper.series())
    assert "dscache_cache_ready" in scraper.text()  # HELP and TYPE still say what it would be


class ListFails(FakeKube):
    """An API server whose lists fail until `up` is set (as one starting or unreachable)."""

    up = False

    async def list_versioned(self, path: str) -> tuple[list[dict[str, Any]], str]:
        if not self.up:
            raise ConnectionError("the API server is not answering")
        return await super().list_versioned(path)


def test_readyz_only_once_the_caches_are_listed() -> None:
    kube = ListFails()

    async def connect() -> ServerApi:
        return kube

    server = AdmissionServer(settings(), connect)
    server.start()
    try:
        assert _readyz(server.port) == (503, "DatasetCaches not listed yet")
        kube.up = True
        deadline = time.monotonic() + 5  # the informer lists again after its backoff (0.5 s)
        while (answer := _readyz(server.port)) != (200, "ok"):
            assert time.monotonic() < deadline, answer
            time.sleep(0.05)
    finally:
        server.stop()


def _readyz(port: int) -> tuple[int, str]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # as the kubelet's HTTPS probe
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", timeout=5, context=context) as resp:
            return int(resp.status), str(resp.read().decode())
    except urllib.error.HTTPError as err:
        return err.code, str(err.read().decode())
