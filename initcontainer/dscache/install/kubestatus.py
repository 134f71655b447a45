"""Report install progress into the DatasetCache's status, from inside the installer Job.

A Sink that PATCHes `status.progress` (throttled) and, when done, `status.installed`/`size`, with the
Job's ServiceAccount token (RBAC: patch on this one resource's status subresource, nothing else). The
token is the short-lived one the operator projects into the install container only
(`INSTALLER_TOKEN_DIR`; the pod gets no default token), re-read for every request since the kubelet
rotates it.
Stdlib only: no kubernetes client in the data plane. Reporting is best effort: an unreachable API
server never fails the install. On error the message goes to the termination log, where the operator
reads it for `status.message`; install errors never contain credentials.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dscache.api.names import NameError_, parse_version_arg
from dscache.api.resource import INSTALLER_TOKEN_DIR, resource_path
from dscache.api.sizes import format_size
from dscache.api.status import DatasetCacheStatus, InstalledVersion, Progress
from dscache.install.progress import Sink
from dscache.store.paths import CachePaths
from dscache.store.records import CompleteRecord, read_complete

API_URL_ENV = "DSCACHE_KUBE_API_URL"
INTERVAL_ENV = "DSCACHE_STATUS_INTERVAL"
DEFAULT_INTERVAL = 10.0  # seconds: at most 360 progress writes per hour of install
TOKEN_DIR = Path(INSTALLER_TOKEN_DIR)
TERMINATION_LOG = Path("/dev/termination-log")


@dataclass(frozen=True)
class StatusTarget:
    """The status subresource to patch and the credentials to do it with."""

    api_url: str
    namespace: str
    name: str
    token_path: Path = TOKEN_DIR / "token"
    ca_path: Path = TOKEN_DIR / "ca.crt"

    @property
    def url(self) -> str:
        return self.api_url.rstrip("/") + resource_path(self.namespace, self.name, "status")


def api_url_from_env(env: Mapping[str, str]) -> str | None:
    """The API server: `DSCACHE_KUBE_API_URL` (set by the operator), else the in-cluster service env."""
    if env.get(API_URL_ENV):
        return env[API_URL_ENV]
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if host and port:
        return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return None


Patcher = Callable[[StatusTarget, dict[str, Any]], None]


def patch_status(target: StatusTarget, status: dict[str, Any]) -> None:
    """Merge-patch `status` into the resource; raises OSError/HTTPError on failure."""
    ctx = ssl.create_default_context(cafile=str(target.ca_path)) if target.ca_path.is_file() else None
    token = target.token_path.read_text().strip()  # re-read: projected tokens rotate
    req = urllib.request.Request(
        target.url,
        data=json.dumps({"status": status}).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/merge-patch+json"},
    )
    with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
        resp.read()


def progress_status(fields: Mapping[str, Any], bytes_per_second: float | None = None) -> Progress:
    """Pure: the `status.progress` for a progress event's fields and the current rate (bytes/s)."""
    return Progress.of(
        bytes_done=int(fields.get("bytesDone", 0)),
        bytes_total=int(fields.get("bytesTotal", 0)),
        items_done=int(fields.get("itemsDone", 0)),
        items_total=int(fields.get("itemsTotal", 0)),
        bytes_per_second=bytes_per_second,
    )


def interval_from_env(env: Mapping[str, str]) -> float:
    """Seconds between progress writes: `DSCACHE_STATUS_INTERVAL` (checked up front by the CLI), else 10."""
    raw = env.get(INTERVAL_ENV, "").strip()
    return float(raw) if raw else DEFAULT_INTERVAL


def content_digest(record: CompleteRecord) -> str:
    """What was installed, for remotes without revisions (S3, HTTP): a digest of the archive list."""
    items = sorted((name, a.size, a.sha256 or "") for name, a in record.archives.items())
    return "sha256:" + hashlib.sha256(json.dumps(items).encode()).hexdigest()


def installed_status(cache_root: Path, versions: list[str]) -> DatasetCacheStatus:
    """The `installed`, `size` and `versionsReady` status of the versions a finished install points at."""
    cache = CachePaths(cache_root)
    installed: list[InstalledVersion] = []
    for text in versions:
        try:
            key = parse_version_arg(text)
        except NameError_:
            continue
        record = read_complete(cache.version_dir(key))
        if record is None:
            continue
        installed.append(
            InstalledVersion(
                data_type=key.data_type,
                source=key.source,
                version=key.version,
                revision=record.revision or None,
                digest=content_digest(record) if record.archives else None,
                files=record.files,
                bytes=record.bytes,
            )
        )
    return DatasetCacheStatus(
        installed=installed,
        size=format_size(sum(v.bytes or 0 for v in installed)),
        versions_ready=f"{len(installed)}/{len(versions)}",
    )


class KubeStatusSink:
    """Patches progress at most every `every` seconds, and the installed versions at the end.

    The rate is measured between two progress writes (bytes done, on the monotonic `clock`), so it
    shows the current speed and not resumed work; the first write has none.
    """

    def __init__(
        self,
        target: StatusTarget,
        cache_root: Path,
        *,
        every: float = DEFAULT_INTERVAL,
        patch: Patcher = patch_status,
        termination_log: Path = TERMINATION_LOG,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target, self.cache_root, self.every, self.patch = target, cache_root, every, patch
        self.termination_log, self.clock = termination_log, clock
        self._last = float("-inf")
        self._last_done: int | None = None
        self._warned = False

    def _send(self, status: dict[str, Any]) -> None:
        try:
            self.patch(self.target, status)
        except (OSError, urllib.error.HTTPError, ValueError) as err:
            if not self._warned:  # once: a long install must not flood its log
                detail = f"HTTP {err.code}" if isinstance(err, urllib.error.HTTPError) else type(err).__name__
                print(f"dscache: warning: cannot report status to the API server ({detail})", file=sys.stderr)
                self._warned = True

    def emit(self, event: str, fields: dict[str, Any]) -> None:
        now = self.clock()
        if event in ("start", "progress"):
            if event == "progress" and now - self._last < self.every:
                return
            done = int(fields.get("bytesDone", 0))
            rate = None
            if event == "progress" and self._last_done is not None and now > self._last:
                rate = max(0, done - self._last_done) / (now - self._last)
            self._last, self._last_done = now, done
            self._send(DatasetCacheStatus(progress=progress_status(fields, rate)).patch())
        elif event == "done":
            status = installed_status(self.cache_root, [*fields["published"], *fields["present"]])
            status.progress = Progress(percent="100%", eta="0s")  # merged into the last counters
            self._send(status.patch())
        elif event == "error":
            self._write_termination_log(str(fields.get("message", "")))

    def _write_termination_log(self, message: str) -> None:
        if self.termination_log.exists():
            with contextlib.suppress(OSError):
                self.termination_log.write_text(message[:4000])

    def close(self) -> None:
        pass


class TeeSink:
    """Sends every event to several sinks (the Job log and the API)."""

    def __init__(self, *sinks: Sink) -> None:
        self.sinks = sinks

    def emit(self, event: str, fields: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.emit(event, fields)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def status_sink(namespace: str, name: str, cache_root: Path, env: Mapping[str, str] | None = None) -> Sink:
    """The sink for `dscache install --report-status`; a no-op sink with a warning outside a cluster."""
    env = os.environ if env is None else env
    url = api_url_from_env(env)
    if url is None:
        print(f"dscache: warning: --report-status: no API server ({API_URL_ENV} unset)", file=sys.stderr)
        return TeeSink()
    return KubeStatusSink(StatusTarget(url, namespace, name), cache_root, every=interval_from_env(env))
