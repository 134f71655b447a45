"""What the installer reports: events to a `Sink`, and the counters behind its progress events.

The installer emits events (`start`, `progress`, `version_published`, `done`, `error`); a sink renders
them (`dscache.cli.render`: a rich bar, plain lines or JSON; `kubestatus`: the resource's status).
Counters are updated from worker threads, so they sit behind a lock; sinks are called from the main
thread only (`tick`).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol


class Sink(Protocol):
    """Receives installer events; `fields` are JSON-serialisable."""

    def emit(self, event: str, fields: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def deprecated_item_names(done: int, total: int) -> dict[str, int]:
    """`archivesDone`/`archivesTotal`: the names `itemsDone`/`itemsTotal` had before they fitted both
    layouts (an item is an archive, or a file in layout Files), kept with the same values for readers
    of earlier builds (README: "Progress"); to be dropped with the v1beta1 API."""
    return {"archivesDone": done, "archivesTotal": total}


class Counters:
    """Thread-safe byte and item counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_done = 0
        self.bytes_total = 0
        self.items_done = 0
        self.items_total = 0
        self.started = time.monotonic()

    def set_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes_done = n

    def set_items(self, n: int) -> None:
        with self._lock:
            self.items_done = n

    def item_done(self) -> None:
        with self._lock:
            self.items_done += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            elapsed = max(time.monotonic() - self.started, 1e-6)
            return {
                "bytesDone": self.bytes_done,
                "bytesTotal": self.bytes_total,
                "itemsDone": self.items_done,
                "itemsTotal": self.items_total,
                **deprecated_item_names(self.items_done, self.items_total),
                "bytesPerSecond": int(self.bytes_done / elapsed),
            }
