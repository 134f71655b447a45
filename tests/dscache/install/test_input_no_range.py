"""A server that ignores Range (`python -m http.server`: 200 and the whole body for every ranged GET):
the archive comes in the first part's answer, read to its end: one GET, each byte sent once, not
one full body per part (h6-input, finding 6e) nor a second GET after the first part."""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dscache.api.names import VersionKey
from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree, publish_archives

KEY = VersionKey("objects", "big", "v1")


class _Counting(SimpleHTTPRequestHandler):
    gets: Counter[str]
    sent: Counter[str]

    def do_GET(self) -> None:
        self.gets[self.path] += 1
        super().do_GET()

    def copyfile(self, source: Any, outputfile: Any) -> None:
        """The body, counted as it goes into the socket (a reader that went away stops it)."""
        while chunk := source.read(64 << 10):
            outputfile.write(chunk)
            self.sent[self.path] += len(chunk)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client closing a full body early (connection reset) is expected here


@pytest.fixture
def no_range_server(tmp_path: Path) -> Iterator[tuple[str, Path, Counter[str], Counter[str]]]:
    root = tmp_path / "served"
    root.mkdir()
    gets: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    handler = type("Handler", (_Counting,), {"gets": gets, "sent": sent})
    server = _QuietServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root, gets, sent
    finally:
        server.shutdown()
        server.server_close()


def test_an_archive_from_a_server_ignoring_range_takes_one_get_and_each_byte_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_range_server: tuple[str, Path, Counter[str], Counter[str]],
) -> None:
    url, root, gets, sent = no_range_server
    data = os.urandom(3 << 19)  # 1.5 MiB that zstd cannot shrink: one archive of 24 parts of 64 KiB
    tree = make_tree(tmp_path / "tree", {"blob.bin": data})
    publish_archives(tree, root, KEY, archive_size=8 << 20)
    archives = [p for p in root.rglob("*.tar.zst")]
    assert len(archives) == 1 and archives[0].stat().st_size > 1 << 20
    monkeypatch.setenv("DSCACHE_PART_SIZE", "64Ki")
    monkeypatch.setenv("DSCACHE_STREAMS", "8")
    cache = tmp_path / "c"
    result = run("install", "-q", "--cache", str(cache), "--source", url, "--version", str(KEY))
    assert (result.code, result.err) == (0, "")
    archive = f"/{archives[0].relative_to(root).as_posix()}"
    assert {path: n for path, n in gets.items() if path.endswith(".tar.zst")} == {archive: 1}
    assert sent[archive] == archives[0].stat().st_size
    installed = cache / "objects" / "big" / "v1" / "blob.bin"
    assert hashlib.sha256(installed.read_bytes()).digest() == hashlib.sha256(data).digest()
