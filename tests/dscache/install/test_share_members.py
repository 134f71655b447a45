"""Archive members changed in place: a fresh install must not link them, `verify --content` must find
them in every version that holds the inode, and `install --repair --content` must fetch them again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.store.paths import ITEMS, CachePaths
from tests.factories import content_for, make_tree, publish_archives

V6 = VersionKey("objects", "thor", "v6")
V7 = VersionKey("objects", "thor", "v7")
FILES = {
    "sub1/f1.bin": content_for("sub1/f1.bin", 8_000),
    "sub1/f2.bin": content_for("sub1/f2.bin", 6_000),
    "sub2/g.bin": content_for("sub2/g.bin", 50_000),
    "top.txt": b"hello\n",
}
DAMAGED = "sub1/f1.bin"


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """v6 and v7 published from the same tree: every archive of v7 has the digest of one of v6."""
    tree = make_tree(tmp_path / "tree", dict(FILES))
    remote = tmp_path / "remote"
    for key in (V6, V7):
        publish_archives(tree, remote, key, archive_size=32 << 10)
    return remote


def install(cache: Path, remote: Path, key: VersionKey, *extra: str) -> int:
    args = ["install", "--cache", str(cache), "--source", f"file://{remote}", "--version", str(key)]
    return main([*args, "--layout", "archives", *extra])


def overwrite_in_place(path: Path, offset: int, data: bytes) -> None:
    """Change bytes of a published file without changing its size, inode or mode (as root can)."""
    os.chmod(path, 0o644)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)
    os.chmod(path, 0o444)


def version_bytes(cache: Path, key: VersionKey) -> dict[str, bytes]:
    root = CachePaths(cache).version_dir(key)
    return {p: (root / p).read_bytes() for p in FILES}


def test_a_changed_archive_member_is_not_linked_into_a_new_version(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert install(cache, remote, V6) == 0
    damaged = CachePaths(cache).version_dir(V6) / DAMAGED
    overwrite_in_place(damaged, 3, b"ZZZZ")
    capsys.readouterr()
    assert install(cache, remote, V7) == 0
    assert version_bytes(cache, V7) == FILES
    v6, v7 = CachePaths(cache).version_dir(V6), CachePaths(cache).version_dir(V7)
    assert os.stat(v6 / DAMAGED).st_ino != os.stat(v7 / DAMAGED).st_ino
    assert os.stat(v6 / "sub2/g.bin").st_ino == os.stat(v7 / "sub2/g.bin").st_ino  # another archive
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(damaged) in warnings[0] and "--repair" in warnings[0]


def test_the_items_record_keeps_each_archive_members_sha256(tmp_path: Path, remote: Path) -> None:
    cache = tmp_path / "cache"
    assert install(cache, remote, V6) == 0
    record = json.loads((CachePaths(cache).version_dir(V6) / ITEMS).read_text())
    sums: dict[str, str] = {}
    for item in record["items"].values():
        sums.update(item["extracted"]["fileSha256"])
    # sha256 of b"hello\n", written down
    assert sums["top.txt"] == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert set(sums) == set(FILES)


def test_verify_content_finds_a_changed_member_in_every_version_sharing_it(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert install(cache, remote, V6) == 0
    assert install(cache, remote, V7) == 0  # links v6's trees
    overwrite_in_place(CachePaths(cache).version_dir(V6) / DAMAGED, 3, b"ZZZZ")
    capsys.readouterr()
    assert main(["verify", "--cache", str(cache), "--content", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    changed = {v["version"]: v["changed"] for v in report["versions"] if v.get("changed")}
    assert changed == {str(V6): [DAMAGED], str(V7): [DAMAGED]}


def test_repair_content_fetches_a_changed_member_again_in_both_versions(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert install(cache, remote, V6) == 0
    assert install(cache, remote, V7) == 0
    overwrite_in_place(CachePaths(cache).version_dir(V6) / DAMAGED, 3, b"ZZZZ")
    assert install(cache, remote, V7, "--repair", "--content") == 0
    assert install(cache, remote, V6, "--repair", "--content") == 0
    assert version_bytes(cache, V6) == FILES and version_bytes(cache, V7) == FILES
    assert main(["verify", "--cache", str(cache), "--content"]) == 0


def _strip_member_digests(cache: Path, key: VersionKey) -> None:
    """Make `key`'s items record look like an older dscache's: no sha256 per archive member."""
    root = CachePaths(cache).version_dir(key)
    record = json.loads((root / ITEMS).read_text())
    for item in record["items"].values():
        del item["extracted"]["fileSha256"]
    os.chmod(root, 0o755)
    os.chmod(root / ITEMS, 0o644)
    (root / ITEMS).write_text(json.dumps(record))
    os.chmod(root / ITEMS, 0o444)
    os.chmod(root, 0o555)


def test_an_archive_whose_members_have_no_recorded_digest_is_downloaded_not_linked(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert install(cache, remote, V6) == 0
    _strip_member_digests(cache, V6)
    capsys.readouterr()
    assert install(cache, remote, V7, "--dry-run", "--json") == 0
    (planned,) = json.loads(capsys.readouterr().out)["versions"]
    assert planned["itemsShared"] == 0
    assert install(cache, remote, V7) == 0
    assert version_bytes(cache, V7) == FILES
    v6, v7 = CachePaths(cache).version_dir(V6), CachePaths(cache).version_dir(V7)
    assert all(os.stat(v6 / p).st_ino != os.stat(v7 / p).st_ino for p in FILES)
