"""A Range-capable static HTTP server for a directory (a stand-in for a public R2/GCS bucket URL)."""

from __future__ import annotations

from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote

from tests.servers.httpbase import Handler, ServerBase, file_etag


class _FileHandler(Handler):
    def _serve(self) -> None:
        root: Path = self.owner.root
        wanted = self.owner.authorization
        if wanted is not None and self.headers.get("Authorization") != wanted:
            self.send(401, {"Content-Type": "text/plain", "WWW-Authenticate": 'Basic realm="data"'}, b"no\n")
            return
        rel = unquote(self.url_path).lstrip("/")
        target = (root / rel).resolve()
        if not rel or not target.is_relative_to(root.resolve()) or not target.is_file():
            self.send(404, {"Content-Type": "text/plain"}, b"not found\n")
            return
        ranges = self.owner.ranges
        if not self.owner.validators:
            self.send_file(target, ranges=ranges)
            return
        modified = formatdate(target.stat().st_mtime, usegmt=True)
        self.send_file(target, file_etag(target), {"Last-Modified": modified}, ranges=ranges)

    do_GET = _serve
    do_HEAD = _serve


class FileServer(ServerBase):
    """Serves `root` at `url` (GET/HEAD, single Range, If-Match, ETag, Last-Modified), with faults and a
    request log. `validators=False`: no ETag and no Last-Modified, like some dynamic servers.
    `authorization`: the Authorization header every request must carry (else 401). `ranges=False`:
    every Range header is ignored (a 200 with the whole file, like nginx with `max_ranges 0`), and
    the faults apply to those answers."""

    handler = _FileHandler

    def __init__(
        self, root: Path, validators: bool = True, authorization: str | None = None, *, ranges: bool = True
    ) -> None:
        self.validators = validators
        self.ranges = ranges
        self.authorization = authorization
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
