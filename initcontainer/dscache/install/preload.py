"""Load the archive extractor's libraries on a thread while the installer's plan waits on the network.

The parent process never extracts, but its worker processes are forked from it, so what it has
imported before the fork they need not import again. libarchive and zstandard (`extract.py`) take
35-40 ms to import on this project's 2-core machines, CPU time that delays the first byte when paid
before the plan; an Archives plan's metadata requests wait 20-50 ms on the network (one first-byte
latency each, sent at once), during which a thread can do the import instead.

The thread is joined when the block ends, before any fork: a process forked while another thread
holds an import lock inherits the lock held and deadlocks on its first import of that module. An
import that fails (no libarchive, or a library that is not libarchive) is raised when the block ends,
as `ExtractorUnavailableError` with the import's message (which names the library and how to install
it): the install stops before it requests an archive, as it did when it imported the extractor at its
start, and its caller cleans up as after any other install failure.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator

from dscache.errors import DscacheError

EXTRACTOR = "dscache.install.extract"


class ExtractorUnavailableError(DscacheError):
    """The extractor's libraries cannot be loaded; the message says which one and how to install it."""


def _load(failed: list[ImportError]) -> None:
    try:
        importlib.import_module(EXTRACTOR)
    except ImportError as err:
        failed.append(err)


@contextlib.contextmanager
def extractor_preloaded(needed: bool) -> Iterator[None]:
    """Import `EXTRACTOR` on a thread during the block if `needed`; the block's end waits for it.
    Raises `ExtractorUnavailableError` after a block that did not raise, if the import failed."""
    if not needed:
        yield
        return
    failed: list[ImportError] = []
    thread = threading.Thread(target=_load, args=(failed,), name="preload", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if failed:
        raise ExtractorUnavailableError(str(failed[0])) from None
