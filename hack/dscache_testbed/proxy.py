"""Userspace service proxy: makes ClusterIP Services reachable on this one machine (`python -m
dscache_testbed.proxy --dir DIR`, a process of the bed in kube-proxy's place).

The bed's service CIDR is a loopback range (127.200.0.0/16), so every ClusterIP can be bound
locally. For each TCP port of each Service with a selector, a listener on ClusterIP:port forwards
connections to a Ready pod that the selector matches, at 127.0.0.1:<targetPort> (the bed puts
every pod on the host network, and the node's address is 127.0.0.1). This is what lets the API
server call admission webhooks and aggregated APIs through their Service, as kube-proxy would in a
real cluster (kube-proxy itself cannot: it NATs to pod IPs, and loopback is not routable).
Endpoints and EndpointSlices stay empty: their validation rejects loopback addresses. The one
Service without a selector it serves is `default/kubernetes`, forwarded to the API server's port,
so pods' in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT, set by the kubelet) works.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .informer import Informer
from .kube import Kube

log = logging.getLogger("service-proxy")
Obj = dict[str, Any]


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


class _Listener(threading.Thread):
    def __init__(self, ip: str, port: int, backend: Callable[[], int | None]):
        super().__init__(daemon=True, name=f"svc-{ip}:{port}")
        self.backend = backend
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(64)

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        target = self.backend()
        if target is None:
            conn.close()  # no ready endpoint: refuse, like a Service without endpoints
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", target), timeout=5)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)
        t = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
        t.start()
        _pipe(conn, upstream)
        t.join()
        conn.close()
        upstream.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _target_port(pod: Obj, port: Obj) -> int | None:
    target: int | str = port.get("targetPort") or port["port"]
    if isinstance(target, int) or target.isdigit():
        return int(target)
    for c in pod["spec"]["containers"]:
        for cp in c.get("ports", []):
            if cp.get("name") == target and cp.get("protocol", "TCP") == "TCP":
                return int(cp["containerPort"])
    return None


def _ready(pod: Obj) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conds = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


class ServiceProxy:
    """Keeps one listener per (ClusterIP, port) in step with the Services it is shown."""

    def __init__(self, apiserver_port: int) -> None:
        self.apiserver_port = apiserver_port
        self.listeners: dict[tuple[str, int], _Listener] = {}
        self.specs: dict[tuple[str, int], tuple[str, Obj, Obj]] = {}
        self.pods: list[Obj] = []
        self.lock = threading.Lock()

    def _backend(self, key: tuple[str, int]) -> int | None:
        with self.lock:
            ns, selector, port = self.specs[key]
            pods = list(self.pods)
        if not selector:  # default/kubernetes
            return self.apiserver_port
        for pod in pods:
            labels = pod["metadata"].get("labels", {})
            if pod["metadata"]["namespace"] != ns or not _ready(pod):
                continue
            if all(labels.get(k) == v for k, v in selector.items()):
                target = _target_port(pod, port)
                if target is not None:
                    return target
        return None

    def _resolver(self, key: tuple[str, int]) -> Callable[[], int | None]:
        return lambda: self._backend(key)

    def sync(self, services: list[Obj], pods: list[Obj]) -> None:
        wanted: dict[tuple[str, int], tuple[str, Obj, Obj]] = {}
        for svc in services:
            spec = svc["spec"]
            ip, selector = spec.get("clusterIP"), spec.get("selector")
            apiserver = (svc["metadata"]["namespace"], svc["metadata"]["name"]) == ("default", "kubernetes")
            if not ip or ip == "None" or not (selector or apiserver) or spec.get("type") == "ExternalName":
                continue
            for port in spec.get("ports", []):
                if port.get("protocol", "TCP") == "TCP":
                    wanted[(ip, int(port["port"]))] = (svc["metadata"]["namespace"], selector or {}, port)
        with self.lock:
            self.pods = pods
            self.specs.update(wanted)
        for key in set(self.listeners) - set(wanted):
            self.listeners.pop(key).close()
        for key in set(wanted) - set(self.listeners):
            try:
                listener = _Listener(key[0], key[1], self._resolver(key))
            except OSError as e:
                log.warning("cannot listen on %s:%s: %s", key[0], key[1], e)
                continue
            listener.start()
            self.listeners[key] = listener

    def close(self) -> None:
        for listener in self.listeners.values():
            listener.close()
        self.listeners.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="the bed directory (state.json, pki/)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    root = args.dir.resolve()
    port = int(json.loads((root / "state.json").read_text())["ports"]["apiserver"])
    api = Kube(root, "admin", port)
    changed = threading.Event()
    services = Informer(api, "/api/v1/services", changed)
    pods = Informer(api, "/api/v1/pods", changed)
    for inf in (services, pods):
        inf.start()
    proxy = ServiceProxy(port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.is_set():
        changed.wait(2.0)
        changed.clear()
        try:
            proxy.sync(services.snapshot(), pods.snapshot())
        except Exception:
            log.exception("sync")
    proxy.close()


if __name__ == "__main__":
    main()
