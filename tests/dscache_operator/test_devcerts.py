"""Dev mode's generated CA really authenticates the webhook server it signs, for that address only."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path

import pytest

from dscache_operator.devcerts import generate


def handshake(tmp_path: Path, host: str, expect: str) -> None:
    certs = generate(tmp_path, host)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs.cert, certs.key)
    client_ctx = ssl.create_default_context(cafile=str(certs.ca))
    a, b = socket.socketpair()

    def serve() -> None:
        with contextlib.suppress(ssl.SSLError, OSError), server_ctx.wrap_socket(a, server_side=True) as s:
            s.recv(1)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(b, server_hostname=expect) as c:
            c.sendall(b"x")
    finally:
        thread.join(5)
    assert (certs.key.stat().st_mode & 0o077) == 0, "the private key is readable by others"


def test_ca_verifies_the_serving_certificate_for_its_ip(tmp_path: Path) -> None:
    handshake(tmp_path, "127.0.0.1", "127.0.0.1")


def test_ca_verifies_a_dns_name(tmp_path: Path) -> None:
    handshake(tmp_path, "operator.local", "operator.local")


def test_certificate_is_refused_for_another_host(tmp_path: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(tmp_path, "127.0.0.1", "10.0.0.1")
