"""Minimal JSON REST client for the bed's API server (stdlib only, client-certificate auth).

The service proxy and the test fixtures talk plain JSON so they depend on neither a particular
`kubernetes` client release nor its model classes.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
MERGE = "application/merge-patch+json"


class ApiError(Exception):
    """A non-2xx answer; `status` is the HTTP code and `body` the decoded Status object."""

    def __init__(self, status: int, body: Obj, method: str, path: str):
        self.status, self.body = status, body
        super().__init__(f"{method} {path}: {status} {body.get('message', body)}")


class Kube:
    """One identity (a client certificate of the bed's CA) talking to the bed's API server."""

    def __init__(self, root: Path, user: str, port: int):
        pki = root / "pki"
        self.port = port
        self.ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.ctx.load_cert_chain(str(pki / f"{user}.crt"), str(pki / f"{user}.key"))

    def _conn(self, timeout: float | None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> Obj:
        if params:
            path += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        conn = self._conn(timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            out: Obj = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            out = {"message": raw.decode(errors="replace")}
        if not 200 <= resp.status < 300:
            raise ApiError(resp.status, out, method, path)
        return out

    def get(self, path: str, **params: Any) -> Obj:
        return self.request("GET", path, params=params)

    def get_or_none(self, path: str) -> Obj | None:
        try:
            return self.get(path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def post(self, path: str, body: Obj) -> Obj:
        return self.request("POST", path, body)

    def patch(self, path: str, body: Obj, content_type: str = MERGE) -> Obj:
        return self.request("PATCH", path, body, content_type=content_type)

    def delete(self, path: str, body: Obj | None = None) -> Obj:
        return self.request("DELETE", path, body)

    def watch(self, path: str, params: dict[str, Any]) -> Iterator[Obj]:
        """Stream watch events (one JSON object per line) until the server closes the watch."""
        q = urllib.parse.urlencode({**params, "watch": "true", "allowWatchBookmarks": "true"})
        conn = self._conn(None)
        try:
            conn.request("GET", f"{path}?{q}", headers={"Accept": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise ApiError(resp.status, json.loads(resp.read() or b"{}"), "WATCH", path)
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()
