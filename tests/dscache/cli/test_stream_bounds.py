"""`DSCACHE_STREAMS` and `DSCACHE_PART_SIZE` have upper bounds (256 streams: each is a thread and a
connection; parts of at most 1Gi): a value above is refused in one line naming the variable and the
bound, exit 2, before any request, whether the install runs from the command line or is called as a
function. Failed before the fix: 100000 streams and 2Gi parts were taken."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.api.spec import DatasetCacheSpec
from dscache.cli.exits import exit_code
from dscache.cli.render import JsonSink
from dscache.install.pipeline import InstallError, install
from tests.dscache.cli.cli_helpers import assert_one_clean_line, run
from tests.factories import make_tree, publish_archives, version_items
from tests.servers.files import FileServer

KEY = VersionKey("objects", "toys", "v1")
TOO_MANY = [
    ("DSCACHE_STREAMS", "100000", "must be at most 256"),
    ("DSCACHE_STREAMS", "257", "must be at most 256"),
    ("DSCACHE_PART_SIZE", "2Gi", "must be at most 1Gi"),
    ("DSCACHE_PART_SIZE", "1073741825", "must be at most 1Gi"),
]


def _published(tmp_path: Path, server: FileServer) -> None:
    publish_archives(make_tree(tmp_path / "tree", {"a.bin": 5000, "b.bin": 7000}), server.root, KEY, 8192)
    server.log.clear()


@pytest.fixture(params=TOO_MANY, ids=[f"{name}={value}" for name, value, _reason in TOO_MANY])
def over_bound(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_server: FileServer
) -> tuple[str, str, str]:
    """A published version, and one variable set above its bound: (name, value, the reason refused)."""
    name, value, reason = request.param
    _published(tmp_path, http_server)
    monkeypatch.setenv(name, value)
    return name, value, reason


def test_install_refuses_a_value_above_the_bound_before_any_request(
    tmp_path: Path, http_server: FileServer, over_bound: tuple[str, str, str]
) -> None:
    name, value, reason = over_bound
    cache = tmp_path / "cache"
    result = run("install", "--cache", str(cache), "--source", http_server.url, "--version", str(KEY))
    assert_one_clean_line(result, 2, f"{name}={value!r}", reason)
    assert http_server.log.all() == []
    assert not cache.exists()


def test_install_called_as_a_function_refuses_it_before_any_request(
    tmp_path: Path, http_server: FileServer, over_bound: tuple[str, str, str]
) -> None:
    name, value, reason = over_bound
    spec = DatasetCacheSpec.model_validate(
        {"source": {"http": {"url": http_server.url}}, "versions": version_items(str(KEY))}
    )
    with pytest.raises(InstallError) as raised:
        install(spec, tmp_path / "cache", "default", JsonSink(io.StringIO()))
    assert f"{name}={value!r}: {reason}" in str(raised.value)
    assert exit_code(raised.value) == 2
    assert http_server.log.all() == []
    assert not (tmp_path / "cache").exists()


def test_the_bounds_themselves_are_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_server: FileServer
) -> None:
    _published(tmp_path, http_server)
    monkeypatch.setenv("DSCACHE_STREAMS", "256")
    monkeypatch.setenv("DSCACHE_PART_SIZE", "1Gi")
    cache = tmp_path / "c"
    result = run("install", "-q", "--cache", str(cache), "--source", http_server.url, "--version", str(KEY))
    assert result.code == 0, result
    assert sorted(p.name for p in (cache / KEY.rel).glob("*.bin")) == ["a.bin", "b.bin"]


def test_the_help_names_the_bounds() -> None:
    text = " ".join(run("install", "--help").out.split())
    assert "a count (default 32), at most 256" in text
    assert "a size (default 8Mi), at most 1Gi" in text
