"""`dscache.publish.upload`: what a producer uploads must round-trip, be reproducible, never mislead."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import tarfile
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
import zstandard

from dscache.api.names import VersionKey
from dscache.layouts.manifest import DSCACHE_MANIFEST, DscacheManifest
from dscache.layouts.molmospaces import MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST, molmo_size_mb
from dscache.publish.hfshards import hf_config_name, hf_index_path, readme_with_config
from dscache.publish.pack import BadInputError, PublishError, TreeEntry, plan_archives, symlink_escapes
from dscache.publish.upload import PublishOptions, parse_size, publish
from dscache.remotes.file import FileRemote
from tests.factories import (
    CORRUPT_KINDS,
    MALICIOUS_KINDS,
    Exec,
    Symlink,
    TreeSpec,
    corrupt_archive,
    load_bench,
    make_tree,
    malicious_archive,
    publish_archives,
    publish_raw_archives,
    tree_snapshot,
)

KEY = VersionKey("objects", "thor/part1", "v1")

TREE: TreeSpec = {
    "objects/apple/model.xml": "<mujoco/>\n",
    "objects/apple/textures/skin.png": 9000,
    "objects/apple/textures/alias.png": Symlink("skin.png"),
    "objects/bowl/model.xml": 3000,
    "objects/bowl/mesh.obj": 12000,
    "objects/bowl/up": Symlink("../apple/model.xml"),
    "objects/cup/model.xml": 2000,
    "big.bin": 70000,
    "bin/run.sh": Exec(b"#!/bin/sh\necho hi\n"),
    "empty.txt": b"",
    "emptydir": None,
    "unicode/caf\u00e9-\u6587\u4ef6.txt": "non-ascii name\n",
    "deep/" + "d" * 60 + "/" + "f" * 80 + ".txt": "a name longer than ustar's 100 bytes\n",
}


def archive_members(path: Path) -> list[tarfile.TarInfo]:
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        return tar.getmembers()


def extract_all(archives: list[Path], dest: Path) -> None:
    dest.mkdir()
    for path in archives:
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            tar.extractall(dest, filter="tar")


def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree", TREE)


def test_published_version_extracts_to_the_exact_tree(tree: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    result = publish_archives(tree, remote, KEY, archive_size=16 << 10)
    vdir = remote / KEY.rel
    assert len(result.archives) > 3
    extract_all([vdir / a.name for a in result.archives], tmp_path / "out")
    assert tree_snapshot(tmp_path / "out") == tree_snapshot(tree)
    assert os.access(tmp_path / "out/bin/run.sh", os.X_OK)
    assert not os.access(tmp_path / "out/big.bin", os.X_OK)


def test_manifests_agree_with_the_archives(tree: Path, tmp_path: Path) -> None:
    from molmospaces_resources.compact_trie import CompactPathTrie

    remote = tmp_path / "remote"
    publish_archives(tree, remote, KEY, archive_size=16 << 10)
    vdir = remote / KEY.rel
    archives = sorted(p.name for p in vdir.glob("*.tar.zst"))
    molmo = json.loads((vdir / MOLMO_REMOTE_MANIFEST).read_bytes())
    tries = json.loads(gzip.decompress((vdir / MOLMO_COMBINED_TRIES).read_bytes()))
    manifest = DscacheManifest.loads((vdir / DSCACHE_MANIFEST).read_bytes())

    assert sorted(molmo) == sorted(tries) == sorted(manifest.archives) == archives
    total_files = total_bytes = 0
    for name in archives:
        data = (vdir / name).read_bytes()
        members = archive_members(vdir / name)
        leaves = sorted(m.name for m in members if not m.isdir())
        info = manifest.archives[name]
        assert info.size == len(data)
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert info.files == len(leaves)
        assert info.bytes == sum(m.size for m in members if m.isreg())
        assert molmo[name] == molmo_size_mb(len(data))
        assert sorted(CompactPathTrie.from_dict(tries[name]).leaf_paths()) == leaves
        total_files += len(leaves)
        total_bytes += info.bytes or 0
    files = [p for p in tree.rglob("*") if p.is_file() or p.is_symlink()]
    assert manifest.files == total_files == len(files)
    assert manifest.bytes == total_bytes == sum(p.stat().st_size for p in files if not p.is_symlink())


def test_molmospaces_installs_a_published_version(tree: Path, tmp_path: Path) -> None:
    """molmospaces-resources 0.0.2 itself: extracts every archive and links every trie leaf."""
    from molmospaces_resources.manager import ResourceManager
    from molmospaces_resources.remote_storage import RemoteStorage

    class LocalStorage(RemoteStorage):  # type: ignore[misc]
        def __init__(self, root: Path) -> None:
            self.root = root

        def fetch_file(self, relative_path: Path, filename: str, dest: Path) -> None:
            shutil.copy(self.root / relative_path / filename, dest / filename)

        def stream_archive(self, relative_path: Path, archive_name: str) -> io.RawIOBase:
            return open(self.root / relative_path / archive_name, "rb")  # type: ignore[return-value]

    key = VersionKey("robots", "thor", "v1")  # molmospaces: per-file links, eager install
    publish_archives(tree, tmp_path / "remote", key, archive_size=16 << 10)
    manager = ResourceManager(
        LocalStorage(tmp_path / "remote"),
        {"robots": {"thor": "v1"}},
        symlink_dir=tmp_path / "assets",
        cache_dir=tmp_path / "cache",
    )
    manager.setup()
    installed = tree_snapshot(tmp_path / "cache" / key.rel)
    assert {k: v for k, v in installed.items() if not k.startswith((".", "mjthor_"))} == tree_snapshot(tree)
    linked = tmp_path / "assets/robots/thor"
    for rel, value in tree_snapshot(tree).items():
        if value is not None and rel != "emptydir":
            assert (linked / rel).read_bytes() == (tree / rel).read_bytes()


def test_members_are_normalised(tree: Path, tmp_path: Path) -> None:
    os.utime(tree / "big.bin", (1_700_000_000, 1_700_000_000))
    result = publish_archives(tree, tmp_path / "remote", KEY, archive_size=1 << 20)
    (archive,) = result.archives
    for m in archive_members(tmp_path / "remote" / KEY.rel / archive.name):
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
        assert m.mode in (0o644, 0o755, 0o777)


def test_republishing_the_same_tree_gives_identical_bytes(tree: Path, tmp_path: Path) -> None:
    publish_archives(tree, tmp_path / "a", KEY, archive_size=16 << 10)
    copy = tmp_path / "copy"
    shutil.copytree(tree, copy, symlinks=True)  # new inodes, new mtimes
    os.utime(copy / "big.bin", (1, 1))
    options = PublishOptions(archive_size=16 << 10, threads=2)
    publish(copy, FileRemote(tmp_path / "b"), KEY, options)
    assert all_files(tmp_path / "a") == all_files(tmp_path / "b")


def test_a_subtree_that_fits_is_never_split() -> None:
    def files(obj: str, n: int, size: int) -> list[TreeEntry]:
        return [TreeEntry(f"objects/{obj}/f{i}", "file", size) for i in range(n)]

    entries = [
        *files("a", 3, 1000),
        *files("b", 5, 1000),
        *files("c", 2, 1000),
        TreeEntry("z.bin", "file", 50_000),
    ]
    plans = plan_archives(entries, archive_size=8 * 1024)
    by_object: dict[str, set[str]] = {}
    for plan in plans:
        for e in plan.entries:
            by_object.setdefault(e.path.rsplit("/", 1)[0], set()).add(plan.name)
    assert all(len(names) == 1 for names in by_object.values())
    assert [p.leaf_paths for p in plans if "z.bin" in p.leaf_paths] == [["z.bin"]]
    assert [e for p in plans for e in p.entries] == entries  # order kept, nothing lost
    assert len({p.name for p in plans}) == len(plans)


def test_a_subtree_too_big_is_split_at_its_children() -> None:
    entries = [TreeEntry(f"objects/big/part{i}/f", "file", 4000) for i in range(6)]
    plans = plan_archives(entries, archive_size=10_000)
    assert [len(p.entries) for p in plans] == [2, 2, 2]


def test_hf_shard_index_points_at_the_exact_archive_bytes(tree: Path, tmp_path: Path) -> None:
    remote = tmp_path / "repo"
    key2 = VersionKey("objects", "thor", "v2")
    publish_archives(tree, remote, key2, 1 << 20, hf_shards=True, hf_prefix="mujoco")
    publish_archives(tree, remote, KEY, 16 << 10, hf_shards=True, hf_prefix="mujoco", shard_size=20_000)
    vdir = remote / "mujoco" / KEY.rel
    assert not list(vdir.glob("*.tar.zst"))
    manifest = DscacheManifest.loads((vdir / DSCACHE_MANIFEST).read_bytes())
    config = hf_config_name("mujoco", KEY)
    assert config == "mujoco__objects__thor__part1__v1"
    rows = pq.read_table(remote / hf_index_path(config)).to_pylist()
    assert sorted(r["path"] for r in rows) == sorted(manifest.archives)
    assert len({r["shard_id"] for r in rows}) > 1
    extracted = []
    for row in rows:
        shard = (vdir / f"shards/{row['shard_id']:05d}.tar").read_bytes()
        data = shard[row["offset"] : row["offset"] + row["size"]]
        assert hashlib.sha256(data).hexdigest() == manifest.archives[row["path"]].sha256
        (tmp_path / row["path"]).write_bytes(data)
        extracted.append(tmp_path / row["path"])
    extract_all(extracted, tmp_path / "out")
    assert tree_snapshot(tmp_path / "out") == tree_snapshot(tree)
    # both versions stay loadable: the README lists both configs
    front = yaml.safe_load((remote / "README.md").read_text().split("---")[1])
    assert [c["config_name"] for c in front["configs"]] == [hf_config_name("mujoco", key2), config]


def test_hf_index_loads_with_the_datasets_package(tree: Path, tmp_path: Path) -> None:
    """What molmospaces' HFRemoteStorage does: load_dataset(repo, name=config, split="pkgs")."""
    datasets = pytest.importorskip("datasets")
    remote = tmp_path / "repo"
    publish_archives(tree, remote, KEY, 16 << 10, hf_shards=True, hf_prefix="mujoco")
    config = hf_config_name("mujoco", KEY)
    ds = datasets.load_dataset(str(remote), name=config, split="pkgs", cache_dir=str(tmp_path / "hf-cache"))
    expected = pq.read_table(remote / hf_index_path(config)).to_pylist()
    assert list(ds) == expected
    assert set(ds.features) == {"path", "shard_id", "offset", "size"}


def test_readme_keeps_other_content_and_replaces_its_own_entry() -> None:
    readme = "---\nlicense: apache-2.0\nconfigs:\n- config_name: old\n  data_files: x\n---\n# Title\n"
    once = readme_with_config(readme, "new")
    twice = readme_with_config(once, "new")
    assert once == twice
    front = yaml.safe_load(twice.split("---")[1])
    assert front["license"] == "apache-2.0"
    assert [c["config_name"] for c in front["configs"]] == ["old", "new"]
    assert front["configs"][1]["data_files"] == [{"split": "pkgs", "path": "new/pkgs-*"}]
    assert twice.endswith("# Title\n")


class RecordingRemote(FileRemote):
    """A file remote that records upload order and what was visible when each manifest landed."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.order: list[str] = []

    def put_file(self, path: str, local: Path) -> None:
        self.order.append(path)
        super().put_file(path, local)


@pytest.mark.parametrize("hf_shards", [False, True])
def test_metadata_is_uploaded_after_everything_it_names(tree: Path, tmp_path: Path, hf_shards: bool) -> None:
    remote = RecordingRemote(tmp_path / "remote")
    options = PublishOptions(archive_size=16 << 10, hf_shards=hf_shards, shard_size=30_000)
    publish(tree, remote, KEY, options)
    names = [p.rsplit("/", 1)[-1] for p in remote.order]
    assert names[-3:] == [MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST, DSCACHE_MANIFEST]
    data = [n for n in names[:-3] if n.endswith((".tar.zst", ".tar"))]
    if hf_shards:
        assert names[len(data) :] == [
            "pkgs-00000-of-00001.parquet",
            "README.md",
            MOLMO_COMBINED_TRIES,
            MOLMO_REMOTE_MANIFEST,
            DSCACHE_MANIFEST,
        ]
    assert names[: len(data)] == data and len(data) > 1


class CommittingRemote(FileRemote):
    """A remote that uploads in atomic batches (like HF commits) and records each batch."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.commits: list[list[str]] = []

    def put_files(self, files: list[tuple[str, Path]], message: str | None = None) -> str:
        self.commits.append([p.rsplit("/", 1)[-1] for p, _ in files])
        for path, local in files:
            super().put_file(path, local)
        return f"commit{len(self.commits)}"


@pytest.mark.parametrize(("batch_bytes", "one_commit"), [(1 << 30, True), (20_000, False)])
def test_a_batching_remote_gets_few_commits_with_the_metadata_last(
    tree: Path, tmp_path: Path, batch_bytes: int, one_commit: bool
) -> None:
    remote = CommittingRemote(tmp_path / "remote")
    options = PublishOptions(
        archive_size=16 << 10, hf_shards=True, shard_size=30_000, batch_bytes=batch_bytes
    )
    publish(tree, remote, KEY, options)
    assert (len(remote.commits) == 1) is one_commit
    metadata = ["pkgs-00000-of-00001.parquet", "README.md", MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST]
    assert remote.commits[-1][-5:] == [*metadata, DSCACHE_MANIFEST]
    assert all(name.endswith(".tar") for batch in remote.commits[:-1] for name in batch)


def test_a_failed_upload_publishes_no_manifest(tree: Path, tmp_path: Path) -> None:
    class Failing(FileRemote):
        calls = 0

        def put_file(self, path: str, local: Path) -> None:
            self.calls += 1
            if self.calls == 3:
                raise OSError("disk full")
            super().put_file(path, local)

    with pytest.raises(OSError, match="disk full"):
        publish(tree, Failing(tmp_path / "remote"), KEY, PublishOptions(archive_size=16 << 10))
    vdir = tmp_path / "remote" / KEY.rel
    assert not (vdir / MOLMO_REMOTE_MANIFEST).exists()
    assert not (vdir / DSCACHE_MANIFEST).exists()


def test_an_already_published_version_is_not_replaced_silently(tree: Path, tmp_path: Path) -> None:
    remote = FileRemote(tmp_path / "remote")
    publish(tree, remote, KEY)
    (tree / "objects/cup/model.xml").write_text("changed")
    with pytest.raises(PublishError, match="already published"):
        publish(tree, remote, KEY)
    publish(tree, remote, KEY, PublishOptions(overwrite=True))
    extract_all(list((tmp_path / "remote" / KEY.rel).glob("*.tar.zst")), tmp_path / "out")
    assert (tmp_path / "out/objects/cup/model.xml").read_text() == "changed"


def test_installer_bookkeeping_at_the_top_is_not_published(tmp_path: Path) -> None:
    tree = make_tree(
        tmp_path / "installed",
        {
            "data/a.txt": "a",
            ".dscache-complete.json": "{}",
            MOLMO_REMOTE_MANIFEST: "{}",
            ".objects_0000.tar.zst_complete_extract": "",
            "data/.dscache-complete.json": "nested: this is data",
        },
    )
    result = publish(tree, FileRemote(tmp_path / "remote"), KEY)
    assert sorted(result.skipped) == sorted(
        [".dscache-complete.json", MOLMO_REMOTE_MANIFEST, ".objects_0000.tar.zst_complete_extract"]
    )
    extract_all(list((tmp_path / "remote" / KEY.rel).glob("*.tar.zst")), tmp_path / "out")
    assert sorted(all_files(tmp_path / "out")) == ["data/.dscache-complete.json", "data/a.txt"]


@pytest.mark.parametrize(
    ("target", "why"),
    [("/etc/passwd", "absolute"), ("../../outside", "relative"), ("sub/../../..", "relative")],
)
def test_symlinks_leaving_the_tree_are_rejected_naming_the_file(
    tmp_path: Path, target: str, why: str
) -> None:
    tree = make_tree(tmp_path / "tree", {"ok.txt": "ok", "a/link": Symlink(target)})
    with pytest.raises(BadInputError, match=r"a/link.*points outside the tree"):
        publish(tree, FileRemote(tmp_path / "remote"), KEY)
    assert not (tmp_path / "remote").exists()


def test_a_link_escaping_through_another_link_is_rejected(tmp_path: Path) -> None:
    # each link looks harmless on its own; together they leave the tree
    tree = make_tree(tmp_path / "tree", {"x": Symlink("."), "y/z": "data"})
    (tree / "y/up").symlink_to("../x/..")
    with pytest.raises(BadInputError, match="y/up"):
        publish(tree, FileRemote(tmp_path / "remote"), KEY)


def test_special_files_are_rejected(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", {"ok.txt": "ok"})
    os.mkfifo(tree / "pipe")
    with pytest.raises(BadInputError, match=r"pipe: a FIFO cannot be published"):
        publish(tree, FileRemote(tmp_path / "remote"), KEY)
    (tree / "pipe").unlink()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tree / "sock"))
        with pytest.raises(BadInputError, match=r"sock: a socket cannot be published"):
            publish(tree, FileRemote(tmp_path / "remote"), KEY)
    finally:
        sock.close()


def test_a_device_is_rejected(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", {"ok.txt": "ok"})
    try:
        os.mknod(tree / "null", 0o600 | 0o020000, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    with pytest.raises(BadInputError, match=r"null: a character device cannot be published"):
        publish(tree, FileRemote(tmp_path / "remote"), KEY)


def test_an_empty_tree_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "tree/sub").mkdir(parents=True)
    with pytest.raises(BadInputError, match="nothing to publish"):
        publish(tmp_path / "tree", FileRemote(tmp_path / "remote"), KEY)


@pytest.mark.parametrize(
    ("rel", "target", "escapes"),
    [
        ("a", "b", False),
        ("a/b", "../c", False),
        ("a/b", "../../c", True),
        ("a", "./../x", True),
        ("a/b/c", "../d/../../e", False),
        ("a", "", True),
        ("a", "/abs", True),
    ],
)
def test_symlink_escapes(rel: str, target: str, escapes: bool) -> None:
    assert symlink_escapes(rel, target) is escapes


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("12345", 12345),
        ("64MiB", 64 << 20),
        ("64Mi", 64 << 20),
        ("512KiB", 512 << 10),
        ("1G", 10**9),
        ("1.5GiB", 3 << 29),
        ("4k", 4000),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


# Kubernetes quantity rules (see dscache.api.sizes): case-sensitive suffixes, no ambiguous decimal `GB`.
@pytest.mark.parametrize("text", ["", "MiB", "-1", "0", "12 parsecs", "1i", "1.5.2G", "2GB", "1gib", "500m"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(BadInputError, match="size"):
        parse_size(text)


# --------------------------------------------------- the factories other tests build remotes with


def _escaped(kind: str, box: Path, dest: Path) -> bool:
    """Did a naive extraction of `kind` into `dest` reach outside it (into `box`)?"""
    outside = box / "outside"
    checks: dict[str, Callable[[], bool]] = {
        "absolute": (outside / "abs.txt").exists,
        "dotdot": (box / "escape-dotdot.txt").exists,
        "symlink_absolute": lambda: (dest / "link-abs").resolve() == outside.resolve(),
        "symlink_relative": lambda: not (dest / "sub/link-rel").resolve().is_relative_to(dest.resolve()),
        "symlink_chain": (box / "pwned.txt").exists,
        "symlink_write_through": (outside / "pwned.txt").exists,
        "hardlink_absolute": lambda: (dest / "hard-abs").samefile(outside / "victim"),
        "hardlink_dotdot": lambda: (dest / "hard-rel").samefile(box / "victim"),
    }
    return checks[kind]()


@pytest.mark.parametrize("kind", MALICIOUS_KINDS)
def test_malicious_archives_really_are_hostile(kind: str, tmp_path: Path) -> None:
    """Each builder must defeat a naive extractor, or installer tests that reject it prove nothing."""
    box = tmp_path / "box"
    make_tree(box, {"outside/victim": "victim", "victim": "victim", "dest/.keep": ""})
    hostile = malicious_archive(kind, box / "outside")
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(hostile.data)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert hostile.member in members
        if kind in ("char_device", "block_device", "fifo"):
            m = members[hostile.member]
            assert (m.ischr(), m.isblk(), m.isfifo()) == tuple(kind == k for k in MALICIOUS_KINDS[-3:])
            return
        tar.extractall(box / "dest", filter="fully_trusted")
    assert _escaped(kind, box, box / "dest")


def _read_everything(data: bytes) -> None:
    with (
        zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader,
        tarfile.open(fileobj=reader, mode="r|") as tar,
    ):
        for member in tar:
            fh = tar.extractfile(member)
            if fh is not None:
                fh.read()


@pytest.mark.parametrize("kind", CORRUPT_KINDS)
def test_corrupt_archives_cannot_be_read(kind: str) -> None:
    with pytest.raises((zstandard.ZstdError, tarfile.TarError, EOFError, OSError)):
        _read_everything(corrupt_archive(kind))


def test_raw_archives_are_published_with_matching_manifests(tmp_path: Path) -> None:
    hostile = malicious_archive("dotdot", tmp_path / "outside")
    broken = corrupt_archive("garbage")
    remote = tmp_path / "remote"
    publish_raw_archives(remote, KEY, {"evil.tar.zst": hostile.data, "broken.tar.zst": broken})
    vdir = remote / KEY.rel
    manifest = DscacheManifest.loads((vdir / DSCACHE_MANIFEST).read_bytes())
    assert (vdir / "evil.tar.zst").read_bytes() == hostile.data
    assert manifest.archives["evil.tar.zst"].sha256 == hashlib.sha256(hostile.data).hexdigest()
    assert manifest.archives["broken.tar.zst"].size == len(broken)
    assert manifest.archives["evil.tar.zst"].files == 2
    tries = json.loads(gzip.decompress((vdir / MOLMO_COMBINED_TRIES).read_bytes()))
    assert set(tries) == {"evil.tar.zst", "broken.tar.zst"}


def test_gendata_is_deterministic_and_publishes_about_the_asked_archives(tmp_path: Path) -> None:
    gendata = load_bench("gendata")
    spec = gendata.GenSpec(small_files=300, big_files=2, big_size=200_000, buckets=4)
    stats = gendata.generate(tmp_path / "a", spec)
    gendata.generate(tmp_path / "b", spec)
    assert stats.files == 302
    assert all_files(tmp_path / "a") == all_files(tmp_path / "b")
    sizes = [len(v) for k, v in all_files(tmp_path / "a").items() if k.startswith("objects/")]
    assert len(sizes) == 300 and max(sizes) <= 16 * 1024
    result = gendata.publish_generated(tmp_path / "a", tmp_path / "remote", KEY, archives=12)
    assert 10 <= len(result.archives) <= 14
    assert result.files == 302
    assert 0.3 < result.compressed / result.bytes < 0.8  # semi-compressible, as real assets
