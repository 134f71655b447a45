"""fake-gcs-server on 127.0.0.1 behind a fault-injecting proxy.

Clients use `endpoint` (the proxy) as their GCS API endpoint. Where fake-gcs-server is not faithful to
GCS, the proxy answers as GCS does: a media download with `ifGenerationMatch` naming another
generation than the live one fails with 412 (the emulator ignores the parameter; the proxy asks it
for the live generation), and objects
registered in `composite` (see `GcsEnv.put(composite=True)`) are presented without an md5, as GCS
presents composed objects (crc32c only).
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, unquote

from tests.servers.emulators import EmulatorProxy, emulator_binary
from tests.servers.httpbase import Handler, ServerBase
from tests.servers.proxy import ProxyHandler

_MEDIA = re.compile(r"^/download/storage/v1/b/([^/]+)/o/(.+)$")
_LIST = re.compile(r"^/storage/v1/b/([^/]+)/o/?$")
_MD5_PART = re.compile(r",?md5=[^,]*")


class _GcsHandler(ProxyHandler):
    owner: FakeGcs

    def intercept(self, headers: dict[str, str]) -> bool:
        """A media download conditional on another generation than the live one: 412, as GCS."""
        media = _MEDIA.match(self.url_path)
        wanted = parse_qs(self.url_query).get("ifGenerationMatch") if media else None
        if not media or not wanted or self.command != "GET":
            return False
        conn = http.client.HTTPConnection(*self.owner.upstream, timeout=30)
        try:
            conn.request("GET", f"/storage/v1/b/{media.group(1)}/o/{media.group(2)}")
            resp = conn.getresponse()
            live = json.loads(resp.read()).get("generation") if resp.status == 200 else None
        finally:
            conn.close()
        if live is None or str(live) == wanted[0]:
            return False
        self.read_body()
        self.send(412, {"Content-Type": "text/plain"}, b"conditionNotMet\n")
        return True

    def adapt(self, status: int, headers: dict[str, str], data: bytes) -> tuple[dict[str, str], bytes]:
        """Composite objects (registered in `owner.composite`) without an md5, as GCS shows them."""
        media = _MEDIA.match(self.url_path)
        if media and (unquote(media.group(1)), unquote(media.group(2))) in self.owner.composite:
            headers = {
                k: _MD5_PART.sub("", v).lstrip(",") if k.lower() == "x-goog-hash" else v
                for k, v in headers.items()
            }
        listing = _LIST.match(self.url_path)
        if listing and status == 200 and self.command == "GET":
            bucket = unquote(listing.group(1))
            doc = json.loads(data)
            for item in doc.get("items", []):
                if (bucket, item.get("name")) in self.owner.composite:
                    item.pop("md5Hash", None)
                    item["componentCount"] = 2
            data = json.dumps(doc).encode()
        return headers, data


class FakeGcs(EmulatorProxy):
    name: ClassVar[str] = "fake-gcs-server"
    handler = _GcsHandler

    def __init__(self) -> None:
        super().__init__()
        self.composite: set[tuple[str, str]] = set()
        self._client: Any = None

    def command(self, workdir: Path) -> list[str]:
        return [
            str(emulator_binary("fake-gcs-server")),
            "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.upstream_port),
            "-backend", "memory", "-log-level", "error",
            "-external-url", self.url,  # resumable upload sessions come back through the proxy
        ]  # fmt: skip

    def client(self) -> Any:
        """A google-cloud-storage client straight to the emulator (no faults, no log)."""
        if self._client is None:
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            self._client = storage.Client(
                project="test",
                credentials=AnonymousCredentials(),
                client_options=ClientOptions(api_endpoint=self.direct_url),
            )
        return self._client

    def new_bucket(self) -> str:
        name = f"dscache-{secrets.token_hex(4)}"
        self.client().create_bucket(name)
        return name


@dataclass
class GcsEnv:
    """A fresh bucket on the shared fake-gcs-server."""

    server: FakeGcs
    bucket: str
    generations: dict[str, int] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        """Through the fault proxy (faults and log apply)."""
        return self.server.endpoint

    def put(self, key: str, data: bytes, *, composite: bool = False) -> int:
        """Seed (or replace) an object directly; returns its generation. `composite`: presented
        as a composed object (no md5)."""
        blob = self.server.client().bucket(self.bucket).blob(key)
        blob.upload_from_string(data, content_type="application/octet-stream")
        if composite:
            self.server.composite.add((self.bucket, key))
        else:
            self.server.composite.discard((self.bucket, key))
        self.generations[key] = int(blob.generation)
        return int(blob.generation)

    def media_glob(self, key_glob: str = "*") -> str:
        """The URL-path glob of media downloads of matching keys (for faults and the log)."""
        return f"/download/storage/v1/b/{self.bucket}/o/{quote(key_glob, safe='*')}"

    def source(self, prefix: str = "") -> dict[str, Any]:
        return {"gcs": {"bucket": self.bucket, "prefix": prefix, "endpoint": self.endpoint}}


class _TokenHandler(Handler):
    owner: TokenServer

    def do_POST(self) -> None:
        self.read_body()
        self.send_json(200, {"access_token": self.owner.token, "expires_in": 3600, "token_type": "Bearer"})


class TokenServer(ServerBase):
    """An OAuth token endpoint (a service account key's `token_uri`): every grant gets `token`."""

    handler = _TokenHandler

    def __init__(self) -> None:
        super().__init__()
        self.token = f"ya29.test-{secrets.token_hex(8)}"


class _MetadataHandler(Handler):
    owner: FakeMetadata

    def do_GET(self) -> None:
        flavor = {"Metadata-Flavor": "Google"}
        path = self.url_path
        if self.headers.get("Metadata-Flavor") != "Google":
            self.send(403, flavor, b"missing Metadata-Flavor\n")
        elif path in ("", "/"):
            self.send(200, flavor, b"")
        elif path.endswith("/service-accounts/default/token"):
            token = {"access_token": self.owner.token, "expires_in": 3600, "token_type": "Bearer"}
            self.send_json(200, token, flavor)
        elif path.endswith("/service-accounts/default/"):
            account = {
                "email": "reader@dscache-test.iam.gserviceaccount.com",
                "aliases": ["default"],
                "scopes": [],
            }
            self.send_json(200, account, flavor)
        elif path.endswith("/project/project-id"):
            self.send(200, {**flavor, "Content-Type": "text/plain"}, b"dscache-test")
        else:
            self.send(404, flavor, b"not found\n")


class FakeMetadata(ServerBase):
    """The GCE/GKE metadata server as GKE Workload Identity presents it to a pod: a ping, the
    default service account and its `token`."""

    handler = _MetadataHandler

    def __init__(self) -> None:
        super().__init__()
        self.token = f"ya29.wi-{secrets.token_hex(8)}"
