"""The Hub answers a file's `resolve` URL with a redirect to a signed CDN URL; an object fetched in
parts asks the Hub once and sends its other parts straight to the CDN (one request and one
first-byte wait per part instead of two), and asks the Hub again when the CDN URL has expired."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import CachePaths
from tests.factories import dataset_snapshot
from tests.servers.hub import FakeHub

KEY = VersionKey("models", "bert", "v1")
MIB = 1 << 20
DATA = os.urandom(6 * MIB)  # incompressible: six parts of 1 MiB


@pytest.fixture(autouse=True)
def _small_parts(monkeypatch: pytest.MonkeyPatch, hub: FakeHub) -> None:
    monkeypatch.setenv("DSCACHE_PART_SIZE", str(MIB))
    monkeypatch.setenv("DSCACHE_STREAMS", "4")
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.commit("org/data", {f"{KEY.rel}/weights.bin": DATA})


def _install(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    args = ["install", "--cache", str(cache), "--source", "hf://datasets/org/data", "--layout", "files"]
    assert main([*args, "--version", str(KEY)]) == 0
    return cache


def test_the_parts_of_an_object_go_to_the_cdn_after_one_redirect(tmp_path: Path, hub: FakeHub) -> None:
    cache = _install(tmp_path)
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY))["weights.bin"] == DATA
    resolves = hub.log.find("*/resolve/*/weights.bin", method="GET")
    parts = hub.log.find("/cdn/*", method="GET")
    assert (len(resolves), len(parts)) == (1, 6)


def test_an_expired_cdn_url_is_resolved_again(tmp_path: Path, hub: FakeHub) -> None:
    expired = hub.faults.status(403, times=1, path="/cdn/*")
    expired.skip = 1  # the first part comes through the redirect; a later one finds the URL expired
    cache = _install(tmp_path)
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY))["weights.bin"] == DATA
    assert expired.fired == 1
    assert len(hub.log.find("*/resolve/*/weights.bin", method="GET")) >= 2  # asked the Hub again
