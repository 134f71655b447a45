"""Does admission wait behind the reconciler? The admission server in the reconciler's loop vs its own.

    python bench/bench_admission_loop.py [--reviews 300] [--step-ms 20]

No cluster: the operator's `AdmissionServer` over HTTPS with an in-memory API (500 DatasetCaches),
and a stand-in for kopf's busy event loop: a task doing `--step-ms` of pure-Python work (building and
encoding JSON, as reconciling does) between awaits, forever. A client in another process (as the API
server is) sends pod reviews one at a time over a kept-alive connection and times each; p50/p99 of:
- idle: the server in its own thread, nothing else running (the floor);
- own thread: the server in its own thread and event loop, the busy loop in the main thread
  (how the operator runs it: `admissionserver`), at the interpreter's default switch interval and at
  the operator's (`admissionserver.SWITCH_INTERVAL`);
- reconciler's loop: the same server as a task in the busy loop (how kopf serves webhooks).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import multiprocessing
import ssl
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "operator"), str(REPO / "initcontainer")]

from dscache_operator.admissionserver import SWITCH_INTERVAL, AdmissionServer, ServerApi  # noqa: E402
from dscache_operator.settings import Settings, WebhookSettings  # noqa: E402
from tests.dscache_operator.fakekube import FakeKube  # noqa: E402

MUTATING = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/bench.dscache.io"


def dsc(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "dscache.io/v1alpha1",
        "kind": "DatasetCache",
        "metadata": {"name": f"c-{i}", "namespace": "ml", "generation": 1},
        "spec": {
            "source": {"s3": {"bucket": "b"}},
            "versions": [{"dataType": "bench", "source": f"s{i}", "version": "v1"}],
            "volume": {"claimName": "shared"},
        },
        "status": {"phase": "Ready", "observedGeneration": 1},
    }


def review(i: int) -> bytes:
    pod = {
        "metadata": {"name": f"p{i}", "namespace": "ml", "labels": {"dscache.io/cache": f"c-{i % 500}"}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }
    request = {"uid": str(i), "operation": "CREATE", "namespace": "ml", "object": pod}
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_server() -> tuple[AdmissionServer, FakeKube]:
    kube = FakeKube()
    for i in range(500):
        kube.put(dsc(i))

    async def connect() -> ServerApi:
        return kube

    hook = WebhookSettings(dev=True, host="127.0.0.1", port=free_port())
    return AdmissionServer(Settings(namespaces=("ml",), peering_name="bench", webhook=hook), connect), kube


def client(server: AdmissionServer, kube: FakeKube, n: int) -> list[float]:
    """Seconds per review, timed in another process (as the API server is): no share of our GIL."""
    bundle = kube.webhook_configurations[MUTATING]["webhooks"][0]["clientConfig"]["caBundle"]
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return list(pool.apply(send, (server.port, bundle, n)))


def send(port: int, bundle: str, n: int) -> list[float]:
    """Seconds per review, one at a time over one kept-alive connection."""
    tls = ssl.create_default_context(cadata=base64.b64decode(bundle).decode())
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=30)
    times = []
    for i in range(n + 20):
        body = review(i)
        t0 = time.perf_counter()
        conn.request("POST", "/mutate-pods", body=body, headers={"Content-Type": "application/json"})
        answer = json.loads(conn.getresponse().read())
        if i >= 20:  # the first ones warm up the connection and the index
            times.append(time.perf_counter() - t0)
        assert answer["response"]["allowed"], answer
    conn.close()
    return times


async def busy(step_ms: float, stop: threading.Event) -> None:
    """A stand-in for kopf's loop under load: Python work between awaits."""
    doc = {"items": [dsc(i) for i in range(50)]}
    while not stop.is_set():
        end = time.perf_counter() + step_ms / 1000
        while time.perf_counter() < end:
            json.loads(json.dumps(doc))
        await asyncio.sleep(0)


def wait_indexed(server: AdmissionServer) -> None:
    while server.index is None or len(server.index) < 500:
        time.sleep(0.01)


def own_thread(n: int, step_ms: float | None) -> list[float]:
    server, kube = make_server()
    server.start()
    wait_indexed(server)
    stop = threading.Event()
    loop = threading.Thread(target=lambda: asyncio.run(busy(step_ms or 0, stop)))
    if step_ms is not None:
        loop.start()
    try:
        return client(server, kube, n)
    finally:
        stop.set()
        if step_ms is not None:
            loop.join()
        server.stop()


def reconcilers_loop(n: int, step_ms: float) -> list[float]:
    server, kube = make_server()
    stop = threading.Event()
    out: list[float] = []

    async def main() -> None:
        serving = asyncio.create_task(server._serve())
        work = asyncio.create_task(busy(step_ms, stop))
        while not server._ready.is_set() or server.index is None or len(server.index) < 500:
            await asyncio.sleep(0.01)
        out.extend(await asyncio.to_thread(client, server, kube, n))
        stop.set()
        assert server._stop is not None
        server._stop.set()
        await asyncio.gather(serving, work)

    asyncio.run(main())
    return out


def summary(times: list[float]) -> str:
    ordered = sorted(times)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return f"p50 {at(0.5):6.1f} ms   p99 {at(0.99):6.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reviews", type=int, default=300)
    parser.add_argument(
        "--step-ms", type=float, default=20.0, help="Python work between awaits in the busy loop"
    )
    args = parser.parse_args()
    default = sys.getswitchinterval()
    runs: list[tuple[str, float, Callable[[], list[float]]]] = [
        ("idle", default, lambda: own_thread(args.reviews, None)),
        ("own thread, busy loop beside it", default, lambda: own_thread(args.reviews, args.step_ms)),
        ("own thread, busy loop beside it", SWITCH_INTERVAL, lambda: own_thread(args.reviews, args.step_ms)),
        ("in the busy loop", SWITCH_INTERVAL, lambda: reconcilers_loop(args.reviews, args.step_ms)),
    ]
    print(f"{args.reviews} pod reviews, one at a time; busy loop: {args.step_ms:g} ms of work between awaits")
    for label, switch, run in runs:
        sys.setswitchinterval(switch)
        print(f"{label:32} switch {switch * 1000:g} ms: {summary(run())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
