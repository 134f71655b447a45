"""Azurite's Blob service on 127.0.0.1 behind a fault-injecting proxy.

Azurite serves the account `devstoreaccount1` path-style (`<endpoint>/<container>/<blob>`) with its
published development key. Clients use `endpoint` (the proxy, account path included). Where Azurite
is not faithful to Azure, the proxy answers as Azure does: a range past the end of a blob is 416.
"""

from __future__ import annotations

import base64
import http.client
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from dscache.remotes.azure import AZURITE_KEY
from tests.servers.emulators import EmulatorProxy, emulator_binary
from tests.servers.proxy import ProxyHandler

ACCOUNT = "devstoreaccount1"
_RANGE_START = re.compile(r"^bytes=(\d+)-")


class _AzureHandler(ProxyHandler):
    owner: Azurite

    def intercept(self, headers: dict[str, str]) -> bool:
        """A read whose range starts at or past the end of the blob: 416 with `bytes */<size>`, as
        Azure answers (Azurite sends an empty 206)."""
        rng = _RANGE_START.match(next((v for k, v in headers.items() if k.lower() == "range"), ""))
        if rng is None or self.command != "GET" or self.url_path.count("/") < 3:
            return False
        conn = http.client.HTTPConnection(*self.owner.upstream, timeout=30)
        try:
            conn.request(
                "HEAD", self.path, headers={k: v for k, v in headers.items() if k.lower() != "range"}
            )
            resp = conn.getresponse()
            resp.read()
            size = int(resp.getheader("content-length") or -1) if resp.status == 200 else -1
        finally:
            conn.close()
        if size < 0 or int(rng.group(1)) < size:
            return False
        self.read_body()
        self.send(416, {"Content-Range": f"bytes */{size}"}, b"")
        return True


class Azurite(EmulatorProxy):
    name: ClassVar[str] = "azurite"
    handler = _AzureHandler

    def __init__(self) -> None:
        super().__init__()
        self._service: Any = None

    def command(self, workdir: Path) -> list[str]:
        return [
            str(emulator_binary("azurite")),
            "--blobHost", "127.0.0.1", "--blobPort", str(self.upstream_port),
            "--inMemoryPersistence", "--silent",
            "--skipApiVersionCheck", "--loose",
        ]  # fmt: skip

    @property
    def account_url(self) -> str:
        """The account's endpoint through the proxy."""
        return f"{self.url}/{ACCOUNT}"

    def connection_string(self, direct: bool = False) -> str:
        url = f"{self.direct_url if direct else self.url}/{ACCOUNT}"
        key = f"AccountName={ACCOUNT};AccountKey={AZURITE_KEY}"
        return f"DefaultEndpointsProtocol=http;{key};BlobEndpoint={url};"

    def service(self) -> Any:
        """A BlobServiceClient straight to Azurite (no faults, no log)."""
        if self._service is None:
            from azure.storage.blob import BlobServiceClient

            self._service = BlobServiceClient.from_connection_string(self.connection_string(direct=True))
        return self._service

    def new_container(self) -> str:
        name = f"dscache-{secrets.token_hex(4)}"
        self.service().create_container(name)
        return name


@dataclass
class AzureEnv:
    """A fresh container on the shared Azurite; the account key is in AZURE_STORAGE_KEY."""

    server: Azurite
    container: str

    @property
    def endpoint(self) -> str:
        """The account URL through the fault proxy."""
        return self.server.account_url

    def put(self, key: str, data: bytes, *, md5: bool = True) -> str:
        """Seed (or replace) a blob directly; returns its ETag. Without `md5` the blob is committed
        from blocks, as most tools upload, and has no Content-MD5."""
        from azure.storage.blob import ContentSettings

        blob = self.server.service().get_blob_client(self.container, key)
        if md5:
            import hashlib

            settings = ContentSettings(content_md5=bytearray(hashlib.md5(data).digest()))
            result = blob.upload_blob(data, overwrite=True, content_settings=settings)
        else:
            block = base64.b64encode(b"block-0").decode()
            blob.stage_block(block, data)
            result = blob.commit_block_list([block])
        return str(result["etag"])

    def blob_glob(self, key_glob: str = "*") -> str:
        """The URL-path glob of reads of matching blobs (for faults and the log)."""
        return f"/{ACCOUNT}/{self.container}/{quote(key_glob, safe='*/')}"

    def source(self, prefix: str = "") -> dict[str, Any]:
        return {
            "azure": {
                "account": ACCOUNT,
                "container": self.container,
                "prefix": prefix,
                "endpoint": self.endpoint,
            }
        }
