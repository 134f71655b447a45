"""The benchmark's network model works as a model: it caps a stream, delays first bytes, shares an
aggregate cap, and counts what passed. Functional checks of the model with generous lower bounds on
time (what the caps force), not performance targets of anything."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.request
from urllib.parse import urlsplit

from tests.factories import load_bench
from tests.servers.files import FileServer

netmodel = load_bench("netmodel")
MB = 1_000_000


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return bytes(resp.read())


def test_a_stream_is_capped_to_the_per_connection_rate(http_server: FileServer) -> None:
    data = bytes(range(256)) * (2 * MB // 256)
    http_server.put("blob.bin", data)
    caps = netmodel.Caps(conn_rate=1 * MB, latency=0, aggregate_rate=0)
    with netmodel.NetModel([http_server.url], caps) as model:
        start = time.perf_counter()
        got = _get(f"{model.url(http_server.url)}/blob.bin")
        elapsed = time.perf_counter() - start
        stats = model.stats()
    assert got == data
    assert elapsed >= 1.5  # 2 MB at 1 MB/s
    assert (stats.connections, stats.peak_connections, stats.peak_streams, stats.requests) == (1, 1, 1, 1)
    assert stats.mean_streams == 1.0
    assert stats.bytes_down > 2 * MB  # the body and its headers


def test_each_request_waits_for_its_first_byte(http_server: FileServer) -> None:
    http_server.put("small.txt", b"x" * 100)
    caps = netmodel.Caps(conn_rate=0, latency=0.2, aggregate_rate=0)
    with netmodel.NetModel([http_server.url], caps) as model:
        conn = http.client.HTTPConnection(urlsplit(model.url(http_server.url)).netloc, timeout=30)
        start = time.perf_counter()
        for _ in range(5):  # one keep-alive connection: the delay is per request, not per connection
            conn.request("GET", "/small.txt")
            assert conn.getresponse().read() == b"x" * 100
        elapsed = time.perf_counter() - start
        conn.close()
        stats = model.stats()
    assert elapsed >= 1.0  # 5 x 200 ms
    assert (stats.connections, stats.requests) == (1, 5)


def test_the_aggregate_cap_is_shared_by_all_connections(http_server: FileServer) -> None:
    data = b"y" * MB
    http_server.put("one.bin", data)
    caps = netmodel.Caps(conn_rate=0, latency=0, aggregate_rate=1 * MB)
    with netmodel.NetModel([http_server.url], caps) as model:
        url = f"{model.url(http_server.url)}/one.bin"
        got: list[bytes] = []
        threads = [threading.Thread(target=lambda: got.append(_get(url))) for _ in range(2)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        stats = model.stats()
    assert got == [data, data]
    assert elapsed >= 1.5  # 2 MB together at 1 MB/s
    assert (stats.peak_connections, stats.peak_streams) == (2, 2)
    assert 1.5 <= stats.mean_streams <= 2.0  # both streams for most bytes


def test_an_idle_connection_is_open_but_no_stream(http_server: FileServer) -> None:
    http_server.put("half.bin", b"z" * (MB // 2))
    caps = netmodel.Caps(conn_rate=1 * MB, latency=0, aggregate_rate=0)
    with netmodel.NetModel([http_server.url], caps) as model:
        netloc = urlsplit(model.url(http_server.url)).netloc
        idle = http.client.HTTPConnection(netloc, timeout=30)
        idle.connect()  # a pooled connection that carries nothing
        busy = http.client.HTTPConnection(netloc, timeout=30)
        busy.request("GET", "/half.bin")
        assert len(busy.getresponse().read()) == MB // 2
        stats = model.stats()
        idle.close()
        busy.close()
    assert (stats.peak_connections, stats.peak_streams, stats.mean_streams) == (2, 1, 1.0)


def test_reset_starts_the_counts_afresh(http_server: FileServer) -> None:
    http_server.put("a.txt", b"abc")
    with netmodel.NetModel([http_server.url], netmodel.NO_CAPS) as model:
        _get(f"{model.url(http_server.url)}/a.txt")
        model.reset()
        stats = model.stats()
    assert (stats.connections, stats.requests, stats.bytes_down, stats.bytes_up) == (0, 0, 0, 0)
    assert stats.mean_streams == 0.0
