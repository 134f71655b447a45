"""Load the archive extractor's libraries on a thread while the installer's plan waits on the network.

The parent process never extracts, but its worker processes are forked from it, so what it has
imported before the fork they need not import again. libarchive and zstandard (`extract.py`) take
35-40 ms to import on this project's 2-core machines, CPU time that delays the first byte when paid
before the plan; an Archives plan's metadata requests wait 20-50 ms on the network (one first-byte
latency each, sent at once), during which a thread can do the import instead.

The thread is joined when the block ends, before any fork: a process forked while another thread
holds an import lock inherits the lock held and deadlocks on its first import of that module. An
import that fails here is not kept (`sys.modules` keeps no failed module), so the worker's own
import raises the error again, where it is reported (`cli.app`: one line naming the missing library).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator

EXTRACTOR = "dscache.install.extract"


def _load() -> None:
    with contextlib.suppress(ImportError):
        importlib.import_module(EXTRACTOR)


@contextlib.contextmanager
def extractor_preloaded(needed: bool) -> Iterator[None]:
    """Import `EXTRACTOR` on a thread during the block if `needed`; the block's end waits for it."""
    if not needed:
        yield
        return
    thread = threading.Thread(target=_load, name="preload", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
