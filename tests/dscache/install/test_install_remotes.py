"""Install from S3 (moto over HTTP) and the Hugging Face Hub (fake hub over HTTP), both layouts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import ITEMS, CachePaths
from dscache.store.records import read_complete
from tests.conftest import S3Env
from tests.factories import content_for, dataset_snapshot, make_tree, publish_archives, tree_snapshot
from tests.servers.hub import FakeHub

KEY = VersionKey("objects", "thor", "v1")
TREE = {"a/x.txt": 100, "a/y.bin": 150_000, "b/z.json": 7, "c/empty": 0}


def upload_dir(s3: S3Env, local: Path, prefix: str) -> None:
    for path in sorted(local.rglob("*")):
        if path.is_file():
            s3.put(f"{prefix}/{path.relative_to(local).as_posix()}".lstrip("/"), path.read_bytes())


def manifest(tmp_path: Path, source: str, layout: str = "Archives") -> Path:
    path = tmp_path / "dc.yaml"
    path.write_text(
        f"""
apiVersion: dscache.io/v1alpha1
kind: DatasetCache
metadata: {{name: dc}}
spec:
  source: {source}
  layout: {layout}
  versions: [{{dataType: objects, source: thor, version: v1}}]
"""
    )
    return path


def test_s3_archives_with_custom_endpoint_in_the_spec(tmp_path: Path, s3: S3Env) -> None:
    tree = make_tree(tmp_path / "tree", TREE)
    publish_archives(tree, tmp_path / "remote", KEY, archive_size=2048)
    upload_dir(s3, tmp_path / "remote", "mujoco")
    source = f'{{s3: {{bucket: {s3.bucket}, prefix: mujoco, endpoint: "{s3.endpoint}"}}}}'
    cache = tmp_path / "cache"
    assert main(["install", "-f", str(manifest(tmp_path, source)), "--cache", str(cache)]) == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(tree)
    assert s3.server.log.find("*.tar.zst")


def test_s3_archives_with_a_published_sha256_are_hashed_by_it_alone(tmp_path: Path, s3: S3Env) -> None:
    # The manifest's sha256 proves the bytes: the ETag's md5 would hash every byte a second time for
    # nothing, so none is computed (nor recorded).
    tree = make_tree(tmp_path / "tree", TREE)
    publish_archives(tree, tmp_path / "remote", KEY, archive_size=2048)
    upload_dir(s3, tmp_path / "remote", "mujoco")
    published = json.loads((tmp_path / "remote" / KEY.rel / "dscache-manifest.json").read_text())
    source = f'{{s3: {{bucket: {s3.bucket}, prefix: mujoco, endpoint: "{s3.endpoint}"}}}}'
    cache = tmp_path / "cache"
    assert main(["install", "-f", str(manifest(tmp_path, source)), "--cache", str(cache)]) == 0
    version = CachePaths(cache).version_dir(KEY)
    assert dataset_snapshot(version) == tree_snapshot(tree)
    items = json.loads((version / ITEMS).read_text())["items"]
    want = {name: entry["sha256"] for name, entry in published["archives"].items()}
    assert {name: (item["sha256"], item["md5"]) for name, item in items.items()} == {
        name: (sha, None) for name, sha in want.items()
    }


def test_s3_files_layout_with_aws_endpoint_url(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path / "tree", TREE)
    upload_dir(s3, tree, f"models/{KEY.rel}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    cache = tmp_path / "cache"
    args = ["install", "--cache", str(cache), "--source", f"s3://{s3.bucket}/models", "--layout", "files"]
    assert main([*args, "--version", "objects/thor=v1"]) == 0
    version = CachePaths(cache).version_dir(KEY)
    assert dataset_snapshot(version) == tree_snapshot(tree)
    record = read_complete(version)
    assert record is not None and record.layout == "files"


def test_s3_files_with_a_corrupted_transfer_are_retried_and_verified(tmp_path: Path, s3: S3Env) -> None:
    tree = make_tree(tmp_path / "tree", {"only.bin": 50_000})
    upload_dir(s3, tree, KEY.rel)
    s3.server.faults.corrupt(times=1, path="*only.bin")
    source = f'{{s3: {{bucket: {s3.bucket}, endpoint: "{s3.endpoint}"}}}}'
    cache = tmp_path / "cache"
    assert main(["install", "-f", str(manifest(tmp_path, source, "Files")), "--cache", str(cache)]) == 0
    assert (CachePaths(cache).version_dir(KEY) / "only.bin").read_bytes() == (tree / "only.bin").read_bytes()


def test_hf_sharded_archives_record_the_resolved_commit(tmp_path: Path, hub: FakeHub) -> None:
    tree = make_tree(tmp_path / "tree", TREE)
    repo_dir = tmp_path / "repo"
    publish_archives(tree, repo_dir, KEY, archive_size=2048, hf_shards=True, hf_prefix="mujoco")
    files = {p.relative_to(repo_dir).as_posix(): p.read_bytes() for p in repo_dir.rglob("*") if p.is_file()}
    assert any("/shards/" in f for f in files)
    hub.commit("allenai/molmospaces", files)
    commit = hub.tag("allenai/molmospaces", "v-2025")
    hf = f'repo: allenai/molmospaces, prefix: mujoco, revision: v-2025, endpoint: "{hub.endpoint}"'
    source = f"{{huggingFace: {{{hf}}}}}"
    cache = tmp_path / "cache"
    assert main(["install", "-f", str(manifest(tmp_path, source)), "--cache", str(cache)]) == 0
    version = CachePaths(cache).version_dir(KEY)
    assert dataset_snapshot(version) == tree_snapshot(tree)
    record = read_complete(version)
    assert record is not None and record.revision == commit
    assert any(r.range for r in hub.log.find("*shards*"))


def test_hf_model_repo_files_layout_with_token(
    tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path / "tree", {"config.json": 50, "weights.safetensors": 300_000})
    hub.token = "hf_secret_token_123"
    hub.commit(
        "org/model",
        {
            f"{KEY.rel}/{p.relative_to(tree).as_posix()}": p.read_bytes()
            for p in tree.rglob("*")
            if p.is_file()
        },
        repo_type="model",
    )
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_123")
    cache = tmp_path / "cache"
    args = ["install", "--cache", str(cache), "--source", "hf://models/org/model", "--layout", "files"]
    assert main([*args, "--version", "objects/thor=v1"]) == 0
    version = CachePaths(cache).version_dir(KEY)
    assert (version / "weights.safetensors").read_bytes() == (tree / "weights.safetensors").read_bytes()
    record = read_complete(version)
    assert record is not None and record.revision == hub.head("org/model", repo_type="model")


def test_hf_wrong_token_fails_without_leaking_it(
    tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.token = "hf_right_token"
    hub.commit("org/data", {f"{KEY.rel}/x.txt": b"x"})
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_456")
    args = [
        "install",
        "--cache",
        str(tmp_path / "c"),
        "--source",
        "hf://datasets/org/data",
        "--layout",
        "files",
    ]
    assert main([*args, "--version", "objects/thor=v1"]) == 1
    captured = capsys.readouterr()
    assert "hf_wrong_token_456" not in captured.err + captured.out
    assert captured.err.strip()


def test_hf_model_repo_at_a_revision_per_version(tmp_path: Path, hub: FakeHub) -> None:
    hub.commit("org/bert", {"config.json": b'{"v": 1}', "model.bin": bytes(70_000)}, repo_type="model")
    first = hub.tag("org/bert", "v1", repo_type="model")
    hub.commit("org/bert", {"config.json": b'{"v": 2}'}, repo_type="model")
    second = hub.tag("org/bert", "v2", repo_type="model")
    path = tmp_path / "dc.yaml"
    hf = f'repo: org/bert, repoType: Model, revisionFromVersion: true, endpoint: "{hub.endpoint}"'
    path.write_text(
        f"""
apiVersion: dscache.io/v1alpha1
kind: DatasetCache
metadata: {{name: bert}}
spec:
  source: {{huggingFace: {{{hf}}}}}
  layout: Files
  versions: [{{dataType: models, source: bert, version: v1}}]
"""
    )
    cache = tmp_path / "cache"
    assert main(["install", "-f", str(path), "--cache", str(cache)]) == 0
    path.write_text(path.read_text().replace("version: v1", "version: v2"))
    assert main(["install", "-f", str(path), "--cache", str(cache)]) == 0
    for version, commit, config in (("v1", first, b'{"v": 1}'), ("v2", second, b'{"v": 2}')):
        root = CachePaths(cache).version_dir(VersionKey("models", "bert", version))
        assert (root / "config.json").read_bytes() == config
        assert (root / "model.bin").stat().st_size == 70_000
        record = read_complete(root)
        assert record is not None and record.revision == commit


def test_verify_off_skips_digests_but_still_checks_sizes(tmp_path: Path, s3: S3Env) -> None:
    tree = make_tree(tmp_path / "tree", {"only.bin": 50_000})
    upload_dir(s3, tree, KEY.rel)
    s3.server.faults.corrupt(times=None, path="*only.bin")  # same size, wrong bytes: only a digest sees it
    source = f'{{s3: {{bucket: {s3.bucket}, endpoint: "{s3.endpoint}"}}}}'
    path = manifest(tmp_path, source, "Files")
    assert main(["install", "-f", str(path), "--cache", str(tmp_path / "strict")]) == 1
    path.write_text(path.read_text() + "  install: {verify: false}\n")
    assert main(["install", "-f", str(path), "--cache", str(tmp_path / "lax")]) == 0


# --- S3 objects whose ETag is not an MD5: verified by what the object offers -----------------------


def files_source(s3: S3Env) -> str:
    return f'{{s3: {{bucket: {s3.bucket}, endpoint: "{s3.endpoint}"}}}}'


def install_files(tmp_path: Path, s3: S3Env, cache: str = "cache") -> int:
    path = manifest(tmp_path, files_source(s3), "Files")
    return main(["install", "-f", str(path), "--cache", str(tmp_path / cache)])


@pytest.mark.parametrize("checksum", ["CRC32", "SHA256", None])
def test_sse_kms_objects_install_without_md5_errors(tmp_path: Path, s3: S3Env, checksum: str | None) -> None:
    data = content_for("kms", 300_000)
    s3.put(f"{KEY.rel}/enc.bin", data, encryption="aws:kms", checksum=checksum)
    s3.put(f"{KEY.rel}/plain.txt", b"plain")
    assert install_files(tmp_path, s3) == 0
    assert (CachePaths(tmp_path / "cache").version_dir(KEY) / "enc.bin").read_bytes() == data
    assert len(s3.server.log.find("*/enc.bin", method="GET")) == 1


def test_sse_kms_object_is_still_verified_by_its_stored_checksum(
    tmp_path: Path, s3: S3Env, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put(f"{KEY.rel}/enc.bin", content_for("kms", 50_000), encryption="aws:kms", checksum="CRC32")
    s3.server.faults.corrupt(times=1, path="*/enc.bin")
    assert install_files(tmp_path, s3, "once") == 0  # the corrupted copy is caught and fetched again
    s3.server.faults.corrupt(times=None, path="*/enc.bin")
    assert install_files(tmp_path, s3, "always") == 1
    err = capsys.readouterr().err
    assert "crc32" in err and "md5" not in err
    assert not CachePaths(tmp_path / "always").version_dir(KEY).exists()


def test_sse_c_objects_install_with_the_customer_key(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = bytes(range(100, 132))
    data = content_for("sse-c", 80_000)
    s3.put(f"{KEY.rel}/enc.bin", data, encryption="sse-c", sse_c_key=key)
    assert install_files(tmp_path, s3, "nokey") == 1
    assert "DSCACHE_S3_SSE_C_KEY" in capsys.readouterr().err
    monkeypatch.setenv("DSCACHE_S3_SSE_C_KEY", base64.b64encode(key).decode())
    assert install_files(tmp_path, s3) == 0
    assert (CachePaths(tmp_path / "cache").version_dir(KEY) / "enc.bin").read_bytes() == data
    captured = capsys.readouterr()
    assert base64.b64encode(key).decode() not in captured.out + captured.err


def test_opaque_etags_of_another_store_never_fail_an_intact_object(tmp_path: Path, s3: S3Env) -> None:
    # A MinIO-like store: SSE-S3 objects whose 32-hex ETags are not MD5s, some without checksums.
    s3.put(f"{KEY.rel}/bare.bin", content_for("bare", 40_000), encryption="opaque", checksum=None)
    s3.put(f"{KEY.rel}/crc.bin", content_for("crc", 40_000), encryption="opaque", checksum="CRC32")
    assert install_files(tmp_path, s3) == 0
    version = CachePaths(tmp_path / "cache").version_dir(KEY)
    assert (version / "bare.bin").read_bytes() == content_for("bare", 40_000)
    # Without a checksum, a second download that agrees byte for byte shows the ETag is no MD5.
    assert len(s3.server.log.find("*/bare.bin", method="GET")) == 2
    assert len(s3.server.log.find("*/crc.bin", method="GET")) == 1


def test_multipart_objects_install(tmp_path: Path, s3: S3Env) -> None:
    data = content_for("multi", (5 << 20) + 7)
    s3.put_multipart(f"{KEY.rel}/multi.bin", data)
    assert install_files(tmp_path, s3) == 0
    assert (CachePaths(tmp_path / "cache").version_dir(KEY) / "multi.bin").read_bytes() == data


# --- files layouts whose paths cannot all be files: refused before any download -------------------


def test_a_key_that_is_also_a_prefix_is_refused_before_any_download(
    tmp_path: Path, s3: S3Env, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put(f"{KEY.rel}/page", b"<html>page</html>")
    s3.put(f"{KEY.rel}/page/index.html", b"<html>index</html>")
    s3.put(f"{KEY.rel}/zzz.bin", content_for("z", 10_000))
    assert install_files(tmp_path, s3) == 1
    err = capsys.readouterr().err.strip()
    base = f"s3://{s3.bucket}/{KEY.rel}"
    assert f"{base}/page is a file and also the directory of {base}/page/index.html" in err
    assert len(err.splitlines()) == 1 and "staging" not in err
    assert [r for r in s3.server.log.all() if "list-type" not in r.query] == []  # nothing fetched
    assert not (tmp_path / "cache" / ".dscache" / "staging").exists() or not any(
        (tmp_path / "cache" / ".dscache" / "staging").rglob("*.bin")
    )


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("a/./b.txt", "has an empty, '.' or '..' segment"),
        ("a//b.txt", "has an empty, '.' or '..' segment"),
        ("a/../b.txt", "has an empty, '.' or '..' segment"),
        ("dir/", "ends with '/'"),
        ("x" * 256, "has a segment longer than 255 bytes"),
    ],
)
def test_keys_that_cannot_be_files_are_refused_before_any_download(
    tmp_path: Path, s3: S3Env, capsys: pytest.CaptureFixture[str], key: str, reason: str
) -> None:
    s3.put(f"{KEY.rel}/good.bin", b"good")
    s3.put(f"{KEY.rel}/{key}", b"content")
    assert install_files(tmp_path, s3) == 1
    err = capsys.readouterr().err
    assert f"remote file {key!r} rejected: {reason}" in err
    assert [r for r in s3.server.log.all() if "list-type" not in r.query] == []


def test_empty_directory_markers_are_ignored(tmp_path: Path, s3: S3Env) -> None:
    s3.put(f"{KEY.rel}/", b"")
    s3.put(f"{KEY.rel}/docs/", b"")
    s3.put(f"{KEY.rel}/docs/a.txt", b"a")
    assert install_files(tmp_path, s3) == 0
    version = CachePaths(tmp_path / "cache").version_dir(KEY)
    assert dataset_snapshot(version) == {"docs": None, "docs/a.txt": b"a"}
