"""`dscache install` end to end against real servers: what a user sees in the cache afterwards."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import CachePaths
from dscache.store.records import read_complete, read_ref
from tests.factories import (
    MALICIOUS_KINDS,
    corrupt_archive,
    dataset_snapshot,
    make_tree,
    malicious_archive,
    publish_archives,
    publish_raw_archives,
    tree_snapshot,
)
from tests.servers.files import FileServer

KEY = VersionKey("objects", "thor", "v1")
TREE = {
    "assets/a.xml": 3000,
    "assets/b.xml": 10,
    "assets/sub/c.bin": 70_000,
    "meshes/m1.obj": 5000,
    "meshes/m2.obj": 0,
    "README.txt": 12,
}


def dataset(tmp_path: Path, name: str = "tree") -> Path:
    return make_tree(tmp_path / name, TREE)


def run_install(cache: Path, source: str, *versions: str, extra: tuple[str, ...] = ()) -> int:
    args = ["install", "--cache", str(cache), "--source", source, *extra]
    for v in versions:
        args += ["--version", v]
    return main(args)


def test_http_install_publishes_a_verified_read_only_version(tmp_path: Path, http_server: FileServer) -> None:
    tree = dataset(tmp_path)
    publish_archives(tree, http_server.root, KEY, archive_size=4096)
    cache = tmp_path / "cache"
    assert run_install(cache, http_server.url, "objects/thor=v1") == 0

    version = CachePaths(cache).version_dir(KEY)
    assert dataset_snapshot(version) == tree_snapshot(tree)
    record = read_complete(version)
    assert record is not None and record.layout == "archives" and record.archives
    assert all(a.sha256 for a in record.archives.values())
    assert not os.access(version / "assets" / "a.xml", os.W_OK) or os.geteuid() == 0
    assert stat.S_IMODE((version / "assets" / "a.xml").stat().st_mode) == 0o444
    assert stat.S_IMODE(version.stat().st_mode) == 0o555
    ref = read_ref(CachePaths(cache), "default")
    assert ref is not None and [e.key for e in ref.versions] == [KEY]
    assert not list((cache / ".dscache" / "staging").rglob("*.tar.zst.d"))


def test_rerun_does_no_network_io_even_with_the_remote_down(tmp_path: Path, http_server: FileServer) -> None:
    publish_archives(dataset(tmp_path), http_server.root, KEY, archive_size=4096)
    cache = tmp_path / "cache"
    assert run_install(cache, http_server.url, "objects/thor=v1") == 0
    url = http_server.url
    http_server.stop()
    http_server.log.clear()
    assert run_install(cache, url, "objects/thor=v1") == 0
    assert len(http_server.log) == 0


def test_a_new_version_is_added_beside_the_old_one_and_the_ref_switches(
    tmp_path: Path, http_server: FileServer
) -> None:
    publish_archives(dataset(tmp_path), http_server.root, KEY, archive_size=4096)
    tree2 = make_tree(tmp_path / "tree2", {**TREE, "assets/new.xml": 99})
    publish_archives(tree2, http_server.root, VersionKey("objects", "thor", "v2"), archive_size=4096)
    cache = tmp_path / "cache"
    assert run_install(cache, http_server.url, "objects/thor=v1") == 0
    before = (CachePaths(cache).version_dir(KEY) / ".dscache-complete.json").stat().st_mtime_ns
    http_server.log.clear()
    assert run_install(cache, http_server.url, "objects/thor=v2") == 0
    assert not any("/v1/" in r.path for r in http_server.log.all())
    assert (CachePaths(cache).version_dir(KEY) / ".dscache-complete.json").stat().st_mtime_ns == before
    ref = read_ref(CachePaths(cache), "default")
    assert ref is not None and [e.version for e in ref.versions] == ["v2"]
    molmo = json.loads((cache / "mjthor_data_type_to_source_to_versions.json").read_text())
    assert molmo == {"objects": {"thor": ["v1", "v2"]}}


def test_transient_faults_are_survived(tmp_path: Path, http_server: FileServer) -> None:
    tree = make_tree(tmp_path / "tree", {"big.bin": 3_000_000, "small.txt": 10})
    publish_archives(tree, http_server.root, KEY, archive_size=1 << 30)
    http_server.faults.status(503, times=3, path="*.tar.zst")
    http_server.faults.drop(after=100_000, times=2, path="*.tar.zst")
    http_server.faults.short(after=200_000, times=1, path="*.tar.zst")
    cache = tmp_path / "cache"
    assert run_install(cache, http_server.url, "objects/thor=v1") == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(tree)
    assert any(r.range for r in http_server.log.find("*.tar.zst"))


def test_wrong_bytes_fail_the_digest_check_and_publish_nothing(
    tmp_path: Path, http_server: FileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_archives(dataset(tmp_path), http_server.root, KEY, archive_size=1 << 30)
    http_server.faults.corrupt(times=None, path="*.tar.zst")
    cache = tmp_path / "cache"
    assert run_install(cache, http_server.url, "objects/thor=v1") == 1
    err = capsys.readouterr().err
    assert "sha256" in err or "corrupt" in err
    assert not CachePaths(cache).version_dir(KEY).exists()
    assert read_ref(CachePaths(cache), "default") is None


@pytest.mark.parametrize("kind", MALICIOUS_KINDS)
def test_malicious_archive_fails_naming_archive_and_member(
    kind: str, tmp_path: Path, http_server: FileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("precious")
    hostile = malicious_archive(kind, outside)
    publish_raw_archives(http_server.root, KEY, {"evil.tar.zst": hostile.data})
    cache = tmp_path / "cache"
    assert run_install(cache, http_server.url, "objects/thor=v1") == 1
    err = capsys.readouterr().err
    assert "evil.tar.zst" in err and hostile.member.strip("/").split("/")[-1] in err
    assert not CachePaths(cache).version_dir(KEY).exists()
    assert read_ref(CachePaths(cache), "default") is None
    assert sorted(os.listdir(outside)) == ["victim"]
    written = {p.relative_to(cache).parts[0] for p in cache.rglob("*")}
    assert written <= {".dscache"}


def test_corrupt_zstd_fails_cleanly(
    tmp_path: Path, http_server: FileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_raw_archives(http_server.root, KEY, {"bad.tar.zst": corrupt_archive("garbage")})
    cache = tmp_path / "cache"
    assert run_install(cache, http_server.url, "objects/thor=v1") == 1
    assert "bad.tar.zst" in capsys.readouterr().err
    assert not CachePaths(cache).version_dir(KEY).exists()


def test_missing_version_names_it(
    tmp_path: Path, http_server: FileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_install(tmp_path / "cache", http_server.url, "objects/thor=nope") == 1
    err = capsys.readouterr().err
    assert "objects/thor=nope" in err and "mjthor_resource_file_to_size_mb.json" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["install", "--cache", "c"],
        ["install", "--cache", "c", "--source", "ftp://x", "--version", "a/b=c"],
        ["install", "--cache", "c", "--source", "s3://b", "--version", "a/b=../c"],
        ["install", "--cache", "c", "--source", "s3://b", "--version", "a/b=c", "--ref", "../x"],
        ["install", "--source", "s3://b"],
    ],
)
def test_usage_and_validation_errors_exit_2(argv: list[str], tmp_path: Path) -> None:
    os.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(argv))
    assert exc.value.code == 2
    assert not (tmp_path / "c").exists()


def test_manifest_file_sets_the_default_ref(tmp_path: Path, http_server: FileServer) -> None:
    publish_archives(dataset(tmp_path), http_server.root, KEY, archive_size=4096)
    manifest = tmp_path / "dc.yaml"
    manifest.write_text(
        f"""
apiVersion: dscache.io/v1alpha1
kind: DatasetCache
metadata: {{name: assets, namespace: team-a}}
spec:
  source: {{http: {{url: "{http_server.url}"}}}}
  versions:
  - {{dataType: objects, source: thor, version: v1, link: PerFile, envName: THOR_DIR}}
"""
    )
    cache = tmp_path / "cache"
    assert main(["install", "-f", str(manifest), "--cache", str(cache)]) == 0
    ref = read_ref(CachePaths(cache), "team-a.assets")
    assert ref is not None
    assert ref.versions[0].link_strategy == "perFile" and ref.versions[0].env == "THOR_DIR"


def test_json_events_for_machines(
    tmp_path: Path, http_server: FileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_archives(dataset(tmp_path), http_server.root, KEY, archive_size=4096)
    assert run_install(tmp_path / "cache", http_server.url, "objects/thor=v1", extra=("--json",)) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "version_published" in kinds
    last_progress = [e for e in events if e["event"] == "progress"][-1]
    assert last_progress["bytesDone"] == last_progress["bytesTotal"] > 0
    assert last_progress["archivesDone"] == last_progress["archivesTotal"]


def test_json_error_event(
    tmp_path: Path, http_server: FileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_install(tmp_path / "cache", http_server.url, "objects/thor=v9", extra=("--json",)) == 1
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["event"] == "error" and "objects/thor=v9" in events[-1]["message"]


def test_credentials_in_the_url_never_reach_records_refs_or_output(
    tmp_path: Path, http_server: FileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_archives(dataset(tmp_path), http_server.root, KEY, archive_size=4096)
    secret_url = http_server.url.replace("http://", "http://robot:s3cr3tpw@")
    cache = tmp_path / "cache"
    assert run_install(cache, secret_url, "objects/thor=v1", extra=("--json",)) == 0
    assert http_server.log.all()[0].headers["authorization"].startswith("Basic ")
    assert run_install(tmp_path / "c2", secret_url, "objects/thor=v404") == 1
    captured = capsys.readouterr()
    on_disk = "".join(p.read_text() for p in cache.rglob("*.json") if p.is_file())
    for text in (captured.out, captured.err, on_disk):
        assert "s3cr3tpw" not in text


@pytest.mark.parametrize(
    "answer",
    ["partial", "norange", "nocontentrange", "late", "multipart", "chunked"],
)
def test_every_legal_range_answer_gives_the_whole_archive(
    tmp_path: Path, http_server: FileServer, answer: str
) -> None:
    # e.g. `Range: bytes=0-` answered by a 206 of 64 KiB whose Content-Range states the full length:
    # not the end of the archive, only the first part of it.
    tree = make_tree(tmp_path / "tree", {"big.bin": 1_000_000, "small.txt": 10})
    publish_archives(tree, http_server.root, KEY, archive_size=1 << 30)
    arm = {
        "partial": lambda: http_server.faults.partial(64 << 10, times=None, path="*.tar.zst"),
        "norange": lambda: http_server.faults.norange(times=None, path="*.tar.zst"),
        "nocontentrange": lambda: http_server.faults.nocontentrange(times=None, path="*.tar.zst"),
        "late": lambda: http_server.faults.late(by=1000, times=None, path="*.tar.zst"),
        "multipart": lambda: http_server.faults.multipart(times=None, path="*.tar.zst"),
        "chunked": lambda: http_server.faults.chunked(times=None, path="*.tar.zst"),
    }
    arm[answer]()
    cache = tmp_path / "cache"
    assert run_install(cache, http_server.url, "objects/thor=v1") == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(tree)


@pytest.mark.parametrize(
    ("env", "header"),
    [
        (
            {"DSCACHE_HTTP_USERNAME": "robot", "DSCACHE_HTTP_PASSWORD": "s3cr3tpw"},
            "Basic cm9ib3Q6czNjcjN0cHc=",  # base64 of robot:s3cr3tpw
        ),
        ({"DSCACHE_HTTP_TOKEN": "s3cr3tpw-token"}, "Bearer s3cr3tpw-token"),
    ],
)
def test_a_server_that_demands_credentials_gets_them_from_the_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    header: str,
) -> None:
    # What the installer Job gets from a source's secretRef (a kubernetes.io/basic-auth Secret, or one
    # with a token key); never shown in output or records, also when the install fails.
    with FileServer(tmp_path / "www", authorization=header) as server:
        publish_archives(dataset(tmp_path), server.root, KEY, archive_size=4096)
        cache = tmp_path / "cache"
        assert run_install(cache, server.url, "objects/thor=v1") == 1  # no credentials: 401
        refused = len(server.log.all())
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert run_install(cache, server.url, "objects/thor=v1", extra=("--json",)) == 0
        assert run_install(tmp_path / "c2", server.url, "objects/thor=v404") == 1
        assert {r.headers.get("authorization") for r in server.log.all()[refused:]} == {header}
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(dataset(tmp_path, "again"))
    captured = capsys.readouterr()
    on_disk = "".join(p.read_text() for p in cache.rglob("*.json") if p.is_file())
    for text in (captured.out, captured.err, on_disk):
        assert "s3cr3tpw" not in text and header.split()[1] not in text
