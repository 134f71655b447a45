"""`verify --content` states per version what it checked: files hashed against the digest recorded at
install (archive members included: extraction records each one's sha256), and files it could check
by size only (the manifests and extraction flags dscache writes beside them, and the members of an
archive extracted by a dscache that did not hash them), in the table and in --json."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.paths import ITEMS, CachePaths
from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree, publish_archives

ARCHIVES = VersionKey("objects", "thor", "v1")
FILES = VersionKey("models", "llm", "v1")


def _cache(tmp_path: Path) -> Path:
    """A cache with ARCHIVES (two members in one archive) and FILES (three plain files)."""
    remote, cache = tmp_path / "remote", tmp_path / "cache"
    publish_archives(make_tree(tmp_path / "data", {"a.txt": 300, "b/c.bin": 5000}), remote, ARCHIVES, 1 << 20)
    make_tree(remote / FILES.rel, {"weights.bin": 70_000, "config.json": 300, "sub/tok.txt": 900})
    source = ["--cache", str(cache), "--source", f"file://{remote}"]
    assert run("install", *source, "--version", str(ARCHIVES)).code == 0
    assert run("install", *source, "--layout", "Files", "--version", str(FILES)).code == 0
    return cache


def test_the_table_says_per_version_what_was_hashed_and_what_only_by_size(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    result = run("verify", "--cache", str(cache), "--content")
    assert result.code == 0
    # the archive version: a.txt and b/c.bin, beside them its extraction flag, dscache-manifest.json
    # and the two molmospaces metadata files
    assert result.out.splitlines()[:2] == [
        f"ok       {FILES}  (content: 3 file(s) hashed)",
        f"ok       {ARCHIVES}  (content: 2 file(s) hashed; by size only: 4 other file(s))",
    ]
    assert run("verify", "--cache", str(cache)).out.splitlines()[:2] == [
        f"ok       {FILES}",
        f"ok       {ARCHIVES}",
    ]


def test_json_says_per_version_what_was_hashed_and_what_only_by_size(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    report = json.loads(run("verify", "--cache", str(cache), "--content", "--json").out)
    content = {v["version"]: v["content"] for v in report["versions"]}
    assert content == {
        str(FILES): {"hashedFiles": 3, "notReadFiles": 0, "archiveMembersBySize": 0, "otherFilesBySize": 0},
        str(ARCHIVES): {
            "hashedFiles": 2,
            "notReadFiles": 0,
            "archiveMembersBySize": 0,
            "otherFilesBySize": 4,
        },
    }
    plain = json.loads(run("verify", "--cache", str(cache), "--json").out)
    assert [v["content"] for v in plain["versions"]] == [None, None]  # nothing of the bytes was read


def test_a_file_already_reported_is_counted_as_not_read(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    version = CachePaths(cache).version_dir(FILES)
    os.truncate(version / "weights.bin", 10)  # root: a changed size, found without reading bytes
    result = run("verify", "--cache", str(cache), "--content")
    assert result.code == 1
    assert (
        f"DIFFERS  {FILES}  (content: 2 file(s) hashed; 1 already reported, not read)"
        in result.err.splitlines()
    )


def test_members_an_older_dscache_extracted_without_a_sha256_are_checked_by_size(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    root = CachePaths(cache).version_dir(ARCHIVES)
    record = json.loads((root / ITEMS).read_text())
    for item in record["items"].values():
        del item["extracted"]["fileSha256"]  # as an older dscache wrote it
    os.chmod(root, 0o755)
    os.chmod(root / ITEMS, 0o644)
    (root / ITEMS).write_text(json.dumps(record))
    os.chmod(root / ITEMS, 0o444)
    os.chmod(root, 0o555)
    result = run("verify", "--cache", str(cache), "--content")
    assert result.code == 0
    assert result.out.splitlines()[1] == (
        f"ok       {ARCHIVES}  (content: 0 file(s) hashed; by size only: 2 archive member(s), "
        "4 other file(s))"
    )
