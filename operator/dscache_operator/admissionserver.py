"""The admission webhooks' server: its own thread and event loop, its own watch-fed index.

Admission never waits behind reconciliation (issue 17). kopf serves webhooks from its one event loop,
where every reconcile, watch event and timer of the operator also runs: a review waits for each step
of all of that. Here the HTTPS server (aiohttp), the `CacheIndex` and its `Informer`s, and their API
client live in a thread of their own. `bench/bench_admission_loop.py` (a loop doing 20 ms of Python
work between awaits, as a busy reconciler does; a client in another process): a review took p50 82 ms
served from that loop, 32 ms from its own thread at the interpreter's default switch interval (5 ms:
the thread waits for the GIL after each of its system calls), 3.4 ms (p99 7.4) at `SWITCH_INTERVAL`,
which `cli` sets when the webhooks are served; 0.4 ms when nothing else runs. On the test bed
(`bench/bench_load.py`) both placements measured the same once the reconciler was cheap.

Readiness: `GET /readyz` on the webhook port answers 200 once every scope has been listed into the
index and until `stop()`, 503 otherwise (the chart's readiness probe). The index also feeds the
per-cache metrics (`metrics.set_cache_source`) while the server runs.

The server is started before kopf and stopped after it (`cli`); if it fails while running, `failed`
is set and the `on_failure` callbacks run in their loops (`cli` stops kopf with one: an asyncio flag,
since kopf waits for a threading one in an executor thread that its loop then cannot shut down), so
the process exits rather than serving no admission.
Dev mode generates a CA, and registers webhook configurations (`webhookconfig`) once it listens, and
removes them when it stops unless another instance has pointed them at itself meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from dscache_operator import devcerts, metrics
from dscache_operator.admission import Admission
from dscache_operator.cacheindex import CacheIndex
from dscache_operator.informer import Informer
from dscache_operator.kubeapi import KubeApi, WatchApi
from dscache_operator.settings import Settings
from dscache_operator.webhookconfig import build_configurations, configuration_path
from dscache_operator.webhooks import build_app

log = logging.getLogger("dscache_operator.admissionserver")

START_TIMEOUT = 60.0
SWITCH_INTERVAL = 0.001  # seconds: how soon a busy thread hands the GIL to the admission thread


class ServerApi(KubeApi, WatchApi, Protocol):
    """What the server asks of the API: reads on an index miss, the watch, dev-mode registration."""

    async def ensure_webhook_configuration(self, config: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


class AdmissionServer:
    """Run with `start()` ... `stop()`; `port` is the bound port once started (0 in settings: any)."""

    def __init__(self, settings: Settings, connect: Callable[[], Awaitable[ServerApi]]) -> None:
        self.settings, self.connect = settings, connect
        self.failed = threading.Event()
        self.port = 0
        self.index: CacheIndex | None = None
        self._ready = threading.Event()
        self._stopping = False
        self._on_failure: list[tuple[asyncio.AbstractEventLoop, Callable[[], object]]] = []
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="dscache-admission", daemon=True)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Listening (and, in dev mode, registered) on return; raises what prevented that."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the admission server did not start within {timeout:g}s")
        if self._error is not None:
            raise self._error

    def on_failure(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
        """Run `callback` in `loop` if the server fails while running (at once if it has failed)."""
        self._on_failure.append((loop, callback))
        if self.failed.is_set():
            loop.call_soon_threadsafe(callback)

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping = True
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as err:
            self._error = err
            if self._ready.is_set():
                log.exception("the admission server failed; stopping the operator")
                self.failed.set()
                for loop, callback in self._on_failure:
                    if not loop.is_closed():
                        loop.call_soon_threadsafe(callback)
        finally:
            self._ready.set()

    def _tls(self, workdir: Path) -> tuple[ssl.SSLContext, bytes | None]:
        """The server's TLS context, and the CA to register (dev mode only)."""
        hook = self.settings.webhook
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if hook.dev:
            certs = devcerts.generate(workdir, hook.host)
            context.load_cert_chain(certs.cert, certs.key)
            return context, certs.ca.read_bytes()
        assert hook.cert is not None and hook.key is not None
        context.load_cert_chain(hook.cert, hook.key)
        return context, None

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        kube = await self.connect()
        scopes: tuple[str | None, ...] = self.settings.namespaces or (None,)
        self.index = CacheIndex(scopes)
        informers = [asyncio.create_task(Informer(kube, self.index, s).run()) for s in scopes]
        app = build_app(Admission(self.index, kube, self.settings))
        app.router.add_get("/readyz", self._readyz)
        metrics.set_cache_source(self.index.statuses)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        configs: tuple[dict[str, Any], ...] = ()
        try:
            with tempfile.TemporaryDirectory(prefix="dscache-webhook-") as tmp:
                ca = await self._listen(runner, Path(tmp))
                if ca is not None:
                    configs = self._configurations(ca)
                    for config in configs:
                        await kube.ensure_webhook_configuration(config)
                log.info("admission webhooks served on port %d", self.port)
                self._ready.set()
                await self._stop.wait()
        finally:
            metrics.set_cache_source(None)
            for config in configs:
                await self._unregister(kube, config)
            for task in informers:
                task.cancel()
            await asyncio.gather(*informers, return_exceptions=True)
            await runner.cleanup()
            await kube.close()

    async def _readyz(self, _: web.Request) -> web.Response:
        """200 while serving with a listed index; 503 before (or while stopping), saying why."""
        if self._stopping:
            return web.Response(status=503, text="stopping")
        if self.index is None or not self.index.synced:
            return web.Response(status=503, text="DatasetCaches not listed yet")
        return web.Response(text="ok")

    async def _listen(self, runner: web.AppRunner, workdir: Path) -> bytes | None:
        """Serve HTTPS on the configured address and port; the CA to register in dev mode."""
        hook = self.settings.webhook
        context, ca = self._tls(workdir)
        await runner.setup()
        addr = hook.host if hook.dev else hook.addr
        await web.TCPSite(runner, addr, hook.port, ssl_context=context).start()
        self.port = int(runner.addresses[0][1])
        return ca

    def _configurations(self, ca: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        url = f"https://{self.settings.webhook.host}:{self.port}"
        return build_configurations(self.settings.peering_name, url, ca, self.settings.namespaces)

    async def _unregister(self, kube: ServerApi, config: dict[str, Any]) -> None:
        """Remove our dev-mode configuration, unless another instance has taken it over."""
        path = configuration_path(config)
        ours = {w["clientConfig"]["url"] for w in config["webhooks"]}
        try:
            current = await kube.get(path)
            urls = {w["clientConfig"].get("url") for w in (current or {}).get("webhooks") or []}
            if current is not None and urls == ours:
                await kube.delete(path)
        except Exception as err:  # best effort: the process is ending
            log.warning("could not remove webhook configuration %s: %s", path, err)
