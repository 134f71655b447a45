"""moto's S3 server on 127.0.0.1, behind a fault-injecting HTTP proxy.

Clients (boto3, over real HTTP) talk to `endpoint`, the proxy; it forwards each request unchanged to
moto's `ThreadedMotoServer` and relays the answer through the shared fault machinery, so S3 gets the
same 5xx bursts, dropped connections and request log as the other test servers. `direct_endpoint`
bypasses the proxy (for seeding data without touching the log).
"""

from __future__ import annotations

import http.client
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from tests.servers.httpbase import Handler, ServerBase

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}


class _ProxyHandler(Handler):
    owner: MotoS3

    def _forward(self) -> None:
        body = self.read_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        host, port = self.owner.moto_address
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out = {
                k: v for k, v in resp.getheaders() if k.lower() not in _HOP and k.lower() != "content-length"
            }
            status = resp.status
        finally:
            conn.close()
        if self.command == "HEAD":
            # HEAD answers carry the object's length without a body: relay it as is.
            length = {k.lower(): v for k, v in resp.getheaders()}.get("content-length", "0")
            self.send(status, out, b"", head_length=int(length))
            return
        self.send(status, out, data)

    do_GET = _forward
    do_PUT = _forward
    do_POST = _forward
    do_DELETE = _forward
    do_HEAD = _forward


class MotoS3(ServerBase):
    """moto S3 + proxy. Use `endpoint` with boto3; `client()` gives a ready boto3 client."""

    handler = _ProxyHandler

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto_address: tuple[str, int] = ("127.0.0.1", 0)
        self._direct: Any = None
        super().__init__()

    def start(self) -> MotoS3:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        self._moto.start()
        self.moto_address = self._moto.get_host_and_port()
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        self._moto.stop()

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def direct_endpoint(self) -> str:
        host, port = self.moto_address
        return f"http://{host}:{port}"

    def client(self, direct: bool = True) -> Any:
        """A boto3 S3 client with test credentials (direct to moto by default: no faults, no log)."""
        import boto3

        if direct and self._direct is not None:
            return self._direct
        client = boto3.client(
            "s3",
            endpoint_url=self.direct_endpoint if direct else self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing-secret",
        )
        if direct:
            self._direct = client
        return client

    def new_bucket(self, prefix: str = "dscache-test") -> str:
        name = f"{prefix}-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)
        return name


@dataclass
class S3Env:
    """A fresh bucket on the shared moto server; AWS_* test credentials are set in the environment."""

    server: MotoS3
    bucket: str

    @property
    def endpoint(self) -> str:
        """Through the fault proxy (faults and log apply)."""
        return self.server.endpoint

    def put(self, key: str, data: bytes) -> None:
        """Seed an object directly in moto (not logged, no faults)."""
        self.server.client().put_object(Bucket=self.bucket, Key=key, Body=data)
