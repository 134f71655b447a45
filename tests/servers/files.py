"""A Range-capable static HTTP server for a directory (a stand-in for a public R2/GCS bucket URL)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from tests.servers.httpbase import Handler, ServerBase, file_etag


class _FileHandler(Handler):
    def _serve(self) -> None:
        root: Path = self.owner.root
        rel = unquote(self.url_path).lstrip("/")
        target = (root / rel).resolve()
        if not rel or not target.is_relative_to(root.resolve()) or not target.is_file():
            self.send(404, {"Content-Type": "text/plain"}, b"not found\n")
            return
        self.send_file(target, file_etag(target))

    do_GET = _serve
    do_HEAD = _serve


class FileServer(ServerBase):
    """Serves `root` at `url` (GET/HEAD, single Range, If-Match, ETag), with faults and a request log."""

    handler = _FileHandler

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        super().__init__()

    def start(self) -> FileServer:
        super().start()
        return self

    def put(self, rel: str, data: bytes) -> Path:
        """Write a file under the served root; returns its path."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path
