"""A fault-injecting HTTP proxy in front of another server on 127.0.0.1 (moto's S3 today; the GCS and
Azure emulators, fake-gcs-server and Azurite, the same way).

Clients talk to the proxy's `url`; it forwards each request unchanged to `upstream` and relays the
answer through the shared fault machinery (`httpbase.Handler.send`), so a store whose server is not
ours gets every fault the other test servers have and the same request log. The Range faults that
change the request rather than the answer are applied on the way up: `norange` drops the Range header
(the store answers 200 with the whole object), `early`/`late` move the range's start (the store
answers a 206 starting earlier or later than asked). Subclasses adapt a store's answers in `adapt()`
or answer a request themselves in `intercept()`.
"""

from __future__ import annotations

import http.client
import re

from tests.servers.faults import Fault
from tests.servers.httpbase import Handler, ServerBase

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}
)
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def shift_range(header: str, fault: Fault) -> str:
    """Pure: the Range header an `early` or `late` fault forwards instead of `header` (a single
    `bytes=a-b` range; other forms are forwarded unchanged)."""
    m = _RANGE.match(header.strip())
    if not m:
        return header
    start = int(m.group(1))
    stop = int(m.group(2)) if m.group(2) else None
    if fault.kind == "early":
        start = max(0, start - fault.after)
    elif stop is None or start + fault.after <= stop:
        start += fault.after
    return f"bytes={start}-{'' if stop is None else stop}"


class ProxyHandler(Handler):
    """Forwards to `owner.upstream`; see the module docstring."""

    owner: FaultProxy

    def intercept(self, headers: dict[str, str]) -> bool:
        """Answer the request here instead of forwarding it (True if answered)."""
        return False

    def adapt_request(self, headers: dict[str, str]) -> dict[str, str]:
        """The headers to forward (hop-by-hop ones already removed)."""
        return headers

    def adapt(self, status: int, headers: dict[str, str], data: bytes) -> tuple[dict[str, str], bytes]:
        """The store's answer as the client should see it (headers without hop-by-hop ones)."""
        return headers, data

    def _forward(self) -> None:
        body = self.read_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if self.intercept(headers):
            return
        headers = self.adapt_request(headers)
        fault = self.take_fault()
        rng = next((k for k in headers if k.lower() == "range"), None)
        if fault is not None and rng is not None and self.command == "GET":
            if fault.kind == "norange":
                del headers[rng]
            elif fault.kind in ("early", "late"):
                headers[rng] = shift_range(headers[rng], fault)
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        host, port = self.owner.upstream
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            answer = resp.getheaders()
            status = resp.status
        finally:
            conn.close()
        out = {k: v for k, v in answer if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"}
        out, data = self.adapt(status, out, data)
        if self.command == "HEAD":
            # HEAD answers carry the object's length without a body: relay it as is.
            length = {k.lower(): v for k, v in answer}.get("content-length", "0")
            self.send(status, out, b"", fault, head_length=int(length))
            return
        self.send(status, out, data, fault)

    do_GET = _forward
    do_PUT = _forward
    do_POST = _forward
    do_DELETE = _forward
    do_HEAD = _forward


class FaultProxy(ServerBase):
    """A proxy at `url` for the HTTP server at `upstream` (host, port), with `faults` and `log`."""

    handler = ProxyHandler

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.upstream = upstream
        super().__init__()
