"""List+watch one resource into memory: the one piece of client machinery the bed's service proxy needs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .kube import Kube

log = logging.getLogger("informer")
Obj = dict[str, Any]


class Informer(threading.Thread):
    """List+watch one resource into a dict, waking `changed` on every event."""

    def __init__(self, kube: Kube, path: str, changed: threading.Event, **params: str):
        super().__init__(daemon=True, name=f"informer-{path}")
        self.kube, self.path, self.params, self.changed = kube, path, params, changed
        self.items: dict[str, Obj] = {}
        self.synced = threading.Event()
        self.lock = threading.Lock()

    @staticmethod
    def key(o: Obj) -> str:
        m = o["metadata"]
        return f"{m.get('namespace', '')}/{m['name']}"

    def snapshot(self) -> list[Obj]:
        with self.lock:
            return list(self.items.values())

    def run(self) -> None:
        while True:
            try:
                listed = self.kube.get(self.path, **self.params)
                with self.lock:
                    self.items = {self.key(o): o for o in listed.get("items", [])}
                self.synced.set()
                self.changed.set()
                self._watch(listed["metadata"]["resourceVersion"])
            except Exception as e:  # keep the agent alive through apiserver restarts
                log.warning("%s: %s; relisting", self.name, e)
                time.sleep(1)

    def _watch(self, rv: str) -> None:
        while True:
            for ev in self.kube.watch(
                self.path, {**self.params, "resourceVersion": rv, "timeoutSeconds": 240}
            ):
                obj = ev["object"]
                if ev["type"] == "ERROR":
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                rv = obj["metadata"]["resourceVersion"]
                if ev["type"] == "BOOKMARK":
                    continue
                with self.lock:
                    if ev["type"] == "DELETED":
                        self.items.pop(self.key(obj), None)
                    else:
                        self.items[self.key(obj)] = obj
                self.changed.set()
