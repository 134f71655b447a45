"""A threaded HTTP/1.1 server on 127.0.0.1 whose responses go through fault injection and a log.

Handlers build a response (status, headers, body as bytes or a file slice) and call `send()`, which
applies the armed fault (5xx, dropped connection, truncated or lying body, corruption, latency) and
records the request. Keep-alive is on, so clients' connection reuse is exercised for real.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from tests.servers.faults import Fault, Faults, Request, RequestLog

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class FileSlice:
    """`length` bytes of `path` from `start`: sent with sendfile, never read into memory."""

    path: Path
    start: int
    length: int


Body = bytes | FileSlice


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, stop) of a single `bytes=` range; None if absent or unparseable; "unsatisfiable"."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    first, last = m.group(1), m.group(2)
    if first == "":  # suffix: the last N bytes
        n = int(last)
        return (max(0, size - n), size) if n > 0 else "unsatisfiable"
    start = int(first)
    stop = min(size, int(last) + 1) if last else size
    if start >= size or stop <= start:
        return "unsatisfiable"
    return start, stop


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: Any) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that hang up (tests cut and kill downloads on purpose)."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ServerBase:
    """Start/stop plumbing plus the `faults` and `log` every test server has."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]

    def __init__(self) -> None:
        self.faults = Faults()
        self.log = RequestLog()
        self._server = Server(self.handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name=type(self).__name__, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerBase:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent: a test may stop a server to simulate an outage)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def reset(self) -> None:
        """Disarm all faults and forget the log (between tests on a shared server)."""
        self.faults.clear()
        self.log.clear()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms ACK stalls
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the RequestLog is the record

    def parse_request(self) -> bool:
        self.began = time.monotonic()  # the request line was read: the request is being handled
        self.fault_taken = False
        return super().parse_request()

    @property
    def owner(self) -> Any:
        return self.server.owner

    @property
    def url_path(self) -> str:
        return urlsplit(self.path).path

    @property
    def url_query(self) -> str:
        return urlsplit(self.path).query

    def read_body(self) -> bytes:
        """The request body (Content-Length or chunked)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _record(self, status: int, fault: Fault | None, sent: int = 0) -> None:
        self.owner.log.append(
            Request(
                self.command,
                self.url_path,
                self.url_query,
                {k.lower(): v for k, v in self.headers.items()},
                status,
                fault.kind if fault else None,
                int(self.client_address[1]),
                getattr(self, "began", 0.0),
                time.monotonic(),
                0 if self.command == "HEAD" else sent,
            )
        )

    def take_fault(self) -> Fault | None:
        """The fault armed for this request; asked once per request (a later ask finds none)."""
        if getattr(self, "fault_taken", False):
            return None
        self.fault_taken = True
        return self.owner.faults.take(self.command, self.url_path)  # type: ignore[no-any-return]

    def send(
        self,
        status: int,
        headers: dict[str, str],
        body: Body = b"",
        fault: Fault | None = None,
        head_length: int | None = None,
    ) -> None:
        """Send one response through the armed fault (pass `fault` if already taken, e.g. norange).

        `head_length`: the Content-Length to announce for a HEAD answer without a body.
        """
        if fault is None:
            fault = self.take_fault()
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "status":
            msg = f"injected {fault.status}\n".encode()
            self._record(fault.status, fault, len(msg))
            self.send_response(fault.status)
            if fault.retry_after is not None:
                self.send_header("Retry-After", f"{fault.retry_after:g}")
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(msg)
            return
        if fault is not None and self.command == "GET" and status in (200, 206):
            status, headers, body = _reshape(fault, status, headers, body)
        size = len(body) if isinstance(body, bytes) else body.length
        if head_length is not None and self.command == "HEAD":
            size = head_length
        self._record(status, fault, _body_sent(fault, size))
        announce = size
        if fault is not None and fault.kind == "short":
            announce = min(size, fault.after)
        framing = fault.kind if fault is not None and fault.kind in ("chunked", "unframed") else None
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(k, v)
        if framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        elif framing == "unframed":
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(announce))
        self.end_headers()
        if self.command == "HEAD":
            return
        kind = fault.kind if fault is not None else None
        if kind == "chunked":
            for start in range(0, size, 64 << 10):
                piece = _read_any(body, start, min(size, start + (64 << 10)))
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        if kind == "unframed":
            assert fault is not None
            self._write(body, 0, min(size, fault.after) if fault.after else size)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.close_connection = True
            return
        if kind in ("drop", "truncate", "short", "stall"):
            assert fault is not None
            cut = min(size, fault.after)
            self._write(body, 0, cut)
            if kind == "drop":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
            elif kind == "truncate":
                self.connection.shutdown(socket.SHUT_WR)
                self.close_connection = True
            elif kind == "stall":
                time.sleep(fault.seconds)
                try:
                    self._write(body, cut, size)
                except OSError:
                    self.close_connection = True
            return
        if kind == "corrupt" and size:
            data = bytearray(body if isinstance(body, bytes) else _read(body, 0, size))
            data[size // 2] ^= 0xFF
            self.wfile.write(bytes(data))
            return
        self._write(body, 0, size)

    def _write(self, body: Body, start: int, stop: int) -> None:
        if stop <= start:
            return
        if isinstance(body, bytes):
            self.wfile.write(body[start:stop])
            return
        with open(body.path, "rb") as fh:
            self.wfile.flush()
            self.connection.sendfile(fh, body.start + start, stop - start)

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        import json

        self.send(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(obj).encode())

    def send_error_json(self, status: int, message: str, error_code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if error_code:
            headers["X-Error-Code"] = error_code
        self.send_json(status, {"error": message}, headers)

    def send_file(
        self, path: Path, etag: str | None = None, extra: dict[str, str] | None = None, *, ranges: bool = True
    ) -> None:
        """A file with Range (single range; `ranges=False`: ignored, a 200 with the whole file), If-Match,
        ETag and the armed fault."""
        fault = self.take_fault()
        size = path.stat().st_size
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", **(extra or {})}
        if etag:
            headers["ETag"] = etag
            if_match = self.headers.get("If-Match")
            if if_match and if_match.strip() not in ("*", etag):
                self.send(412, {"Content-Type": "text/plain"}, b"precondition failed\n", fault)
                return
        ignored = not ranges or (fault is not None and fault.kind == "norange")
        rng = None if ignored else self.headers.get("Range")
        parsed = parse_range(rng, size)
        if parsed == "unsatisfiable":
            self.send(416, {"Content-Range": f"bytes */{size}"}, b"", fault)
        elif isinstance(parsed, tuple):
            start, stop = parsed
            if fault is not None and fault.kind == "early":
                start = max(0, start - fault.after)
            elif fault is not None and fault.kind == "late":
                start = min(stop - 1, start + fault.after)
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
            self.send(206, headers, FileSlice(path, start, stop - start), fault)
        else:
            self.send(200, headers, FileSlice(path, 0, size), fault)


def _body_sent(fault: Fault | None, size: int) -> int:
    """Pure: the body bytes an answer of `size` bytes carries through `fault`."""
    if fault is None:
        return size
    if fault.kind in ("drop", "truncate", "short") or (fault.kind == "unframed" and fault.after):
        return min(size, fault.after)
    return size


def _read_any(body: Body, start: int, stop: int) -> bytes:
    return body[start:stop] if isinstance(body, bytes) else _read(body, start, stop)


def _slice(body: Body, start: int, stop: int) -> Body:
    if isinstance(body, bytes):
        return body[start:stop]
    return FileSlice(body.path, body.start + start, stop - start)


_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def _reshape(
    fault: Fault, status: int, headers: dict[str, str], body: Body
) -> tuple[int, dict[str, str], Body]:
    """The answer a Range fault turns a 200/206 into (partial, nocontentrange, multipart)."""
    size = len(body) if isinstance(body, bytes) else body.length
    content_range = next((v for k, v in headers.items() if k.lower() == "content-range"), None)
    others = {k: v for k, v in headers.items() if k.lower() != "content-range"}
    if fault.kind == "partial" and size:
        m = _CONTENT_RANGE.match(content_range or "")
        first, total = (int(m.group(1)), m.group(3)) if m else (0, str(size))
        n = max(1, min(fault.after, size))
        return 206, {**others, "Content-Range": f"bytes {first}-{first + n - 1}/{total}"}, _slice(body, 0, n)
    if fault.kind == "nocontentrange" and status == 206:
        return status, others, body
    if fault.kind == "multipart" and status == 206 and content_range:
        boundary = "DSCACHE_TEST_BYTERANGES"
        head = (
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Range: {content_range}\r\n\r\n"
        )
        payload = head.encode() + _read_any(body, 0, size) + f"\r\n--{boundary}--\r\n".encode()
        plain = {k: v for k, v in others.items() if k.lower() != "content-type"}
        return status, {**plain, "Content-Type": f"multipart/byteranges; boundary={boundary}"}, payload
    return status, headers, body


def _read(body: FileSlice, start: int, stop: int) -> bytes:
    with open(body.path, "rb") as fh:
        fh.seek(body.start + start)
        return fh.read(stop - start)


def file_etag(path: Path) -> str:
    st = os.stat(path)
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
