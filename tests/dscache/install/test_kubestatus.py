"""The installer's status reporter, against a real HTTP server standing in for the API server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dscache.api.manifest import spec_from_flags
from dscache.api.names import VersionKey
from dscache.install.kubestatus import (
    KubeStatusSink,
    StatusTarget,
    api_url_from_env,
    progress_status,
    status_sink,
)
from dscache.install.pipeline import install
from tests.factories import make_tree, publish_archives

KEY = VersionKey("objects", "thor", "v1")


class _Api(BaseHTTPRequestHandler):
    patches: list[tuple[str, dict[str, str], dict[str, Any]]]
    code = 200

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_PATCH(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.patches.append((self.path, dict(self.headers), body))
        self.send_response(self.code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, type[_Api]]]:
    handler = type("Api", (_Api,), {"patches": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def _target(url: str, tmp_path: Path) -> StatusTarget:
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    return StatusTarget(url, "ns", "objs", token_path=token, ca_path=tmp_path / "no-ca")


def test_install_reports_progress_and_installed_versions(api: tuple[str, type[_Api]], tmp_path: Path) -> None:
    url, handler = api
    remote = tmp_path / "remote"
    publish_archives(
        make_tree(tmp_path / "t", {"a.bin": 50_000, "b.txt": "x"}), remote, KEY, archive_size=8192
    )
    spec = spec_from_flags(f"file://{remote}", "archives", [str(KEY)])
    term = tmp_path / "termination-log"
    sink = KubeStatusSink(_target(url, tmp_path), tmp_path / "cache", every=0.0, termination_log=term)
    install(spec, tmp_path / "cache", "ns.objs", sink)
    paths = {p for p, _, _ in handler.patches}
    assert paths == {"/apis/dscache.io/v1alpha1/namespaces/ns/datasetcaches/objs/status"}
    headers = handler.patches[0][1]
    assert headers["Authorization"] == "Bearer tok-123"
    assert headers["Content-Type"] == "application/merge-patch+json"
    progress = [
        b["status"]["progress"]
        for _, _, b in handler.patches
        if "bytesTotal" in b["status"].get("progress", {})
    ]
    assert progress[0]["bytesDone"] == 0 and progress[-1]["bytesDone"] == progress[-1]["bytesTotal"] > 0
    final = handler.patches[-1][2]["status"]
    [entry] = final["installed"]
    assert (entry["dataType"], entry["source"], entry["version"]) == ("objects", "thor", "v1")
    assert entry["bytes"] >= 50_001 and entry["digest"].startswith("sha256:")
    assert final["versionsReady"] == "1/1" and final["progress"] == {"percent": "100%", "eta": "0s"}
    assert not term.exists()


def test_errors_go_to_the_termination_log_and_api_failures_do_not_fail_the_install(
    api: tuple[str, type[_Api]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, handler = api
    handler.code = 403
    term = tmp_path / "termination-log"
    term.touch()
    sink = KubeStatusSink(_target(url, tmp_path), tmp_path, every=0.0, termination_log=term)
    sink.emit("progress", {"bytesDone": 1, "bytesTotal": 2})
    sink.emit("progress", {"bytesDone": 2, "bytesTotal": 2})
    sink.emit("error", {"message": "s3://b/data: access denied (HTTP 403)"})
    assert term.read_text() == "s3://b/data: access denied (HTTP 403)"
    warnings = capsys.readouterr().err
    assert warnings.count("cannot report status") == 1 and "HTTP 403" in warnings
    assert "tok-123" not in warnings


def test_progress_is_throttled(api: tuple[str, type[_Api]], tmp_path: Path) -> None:
    url, handler = api
    sink = KubeStatusSink(_target(url, tmp_path), tmp_path, every=3600)
    for done in range(10):
        sink.emit("progress", {"bytesDone": done, "bytesTotal": 10})
    assert len(handler.patches) == 1


def test_an_hour_of_install_writes_progress_every_10_s_with_rate_and_eta(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    now = [0.0]
    sink = KubeStatusSink(
        _target("http://127.0.0.1:9", tmp_path),
        tmp_path,
        patch=lambda _, status: sent.append(status),
        clock=lambda: now[0],
    )
    total = 3600 * 1_000_000
    sink.emit("start", {"bytesDone": 0, "bytesTotal": total})
    for tick in range(1, 7201):  # the installer's progress events, every 0.5 s at 1 MB/s
        now[0] = tick / 2
        sink.emit("progress", {"bytesDone": tick * 500_000, "bytesTotal": total})
    assert len(sent) == 1 + 360  # the start, then one write per 10 s: 361 writes per hour of install
    assert "bytesPerSecond" not in sent[0]["progress"]
    assert sent[1]["progress"]["bytesPerSecond"] == 1_000_000
    assert sent[1]["progress"]["eta"] == "59m50s"
    assert sent[-1]["progress"]["eta"] == "0s"


def test_the_status_interval_comes_from_the_environment(tmp_path: Path) -> None:
    env = {"DSCACHE_KUBE_API_URL": "https://127.0.0.1:6443"}
    assert isinstance(sink := status_sink("ns", "objs", tmp_path, env), KubeStatusSink) and sink.every == 10.0
    sink = status_sink("ns", "objs", tmp_path, {**env, "DSCACHE_STATUS_INTERVAL": "2.5"})
    assert isinstance(sink, KubeStatusSink) and sink.every == 2.5


def test_progress_eta_reads_as_a_duration() -> None:
    def eta(done: int, rate: float) -> str | None:
        return progress_status({"bytesDone": done, "bytesTotal": 10**12}, rate).eta

    assert (eta(0, 10**9), eta(10**12 - 45, 1), eta(10**12 - 185, 1)) == ("16m40s", "45s", "3m05s")
    assert (eta(0, 10**8), eta(0, 10**6), eta(0, 0)) == ("2h46m", "11d13h", None)


def test_progress_status_percent() -> None:
    assert (
        progress_status({"bytesDone": 1, "bytesTotal": 3, "archivesDone": 0, "archivesTotal": 2}).percent
        == "33%"
    )
    assert progress_status({"bytesDone": 0, "bytesTotal": 0}).percent == "100%"


def test_api_url_from_env() -> None:
    assert (
        api_url_from_env({"DSCACHE_KUBE_API_URL": "https://a:1", "KUBERNETES_SERVICE_HOST": "b"})
        == "https://a:1"
    )
    assert api_url_from_env({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}) == (
        "https://10.0.0.1:443"
    )
    assert api_url_from_env({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}) == (
        "https://[fd00::1]:443"
    )
    assert api_url_from_env({}) is None


def test_report_status_outside_a_cluster_only_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = status_sink("ns", "objs", tmp_path, env={})
    sink.emit("progress", {"bytesDone": 1, "bytesTotal": 1})
    assert "no API server" in capsys.readouterr().err


def test_install_cli_reports_status_and_survives_an_unauthorised_reporter(
    api: tuple[str, type[_Api]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dscache.cli.app import main

    url, handler = api
    remote = tmp_path / "remote"
    publish_archives(make_tree(tmp_path / "t", {"a.bin": 1000}), remote, KEY, archive_size=8192)
    manifest = tmp_path / "dsc.yaml"
    manifest.write_text(
        "apiVersion: dscache.io/v1alpha1\nkind: DatasetCache\nmetadata: {name: objs, namespace: ns}\n"
        f"spec: {{source: {{file: {{path: {remote}}}}},\n"
        "  versions: [{dataType: objects, source: thor, version: v1}]}\n"
    )
    monkeypatch.setenv("DSCACHE_KUBE_API_URL", url)
    cache = tmp_path / "cache"
    assert main(["install", "-f", str(manifest), "--cache", str(cache), "--report-status"]) == 0
    assert (cache / KEY.rel).is_dir()
    # Outside a pod there is no ServiceAccount token: the reporter warns once, the install succeeds.
    assert capsys.readouterr().err.count("cannot report status") == 1
    assert handler.patches == []
    assert (
        main(
            [
                "install",
                "--cache",
                str(cache),
                "--source",
                f"file://{remote}",
                "--version",
                str(KEY),
                "--report-status",
            ]
        )
        == 2
    )
