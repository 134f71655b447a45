"""What `dscache publish` leaves behind: nothing inside the tree it packs, no directory it made, and on
the remote exactly the version its manifest names (stale objects of a replaced version removed, on
every remote kind publish writes to); `ls-remote` tells an interrupted publish from a version."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.layouts.manifest import DSCACHE_MANIFEST
from dscache.layouts.molmospaces import MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST
from dscache.layouts.offered import offered_versions
from dscache.publish.stale import fresh_name, stale_paths
from dscache.publish.upload import PublishOptions, publish
from dscache.remotes.base import Remote, RemoteError, RemoteFile
from dscache.remotes.file import FileRemote
from tests.dscache.remotes.conformance import BACKENDS, Backend
from tests.factories import TreeSpec, make_tree, tree_snapshot

KEY = VersionKey("objects", "w", "v1")
TREE: TreeSpec = {"a/one.txt": 3000, "b/two.txt": 3000, "c/three.txt": 3000, "d/four.txt": 3000}
SMALL: TreeSpec = {"a/one.txt": 100}
METADATA = {MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST, DSCACHE_MANIFEST}


def publish_argv(tree: Path, *extra: str, version: VersionKey = KEY) -> list[str]:
    return ["publish", str(tree), "--version", str(version), "--archive-size", "4KiB", *extra]


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def entries_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# ------------------------------------------------------------------ item 1: where publish may write


@pytest.mark.parametrize(
    ("where", "flag"),
    [
        (lambda t: ["--to", f"file://{t}/out"], "--to"),
        (lambda t: ["--to", f"file://{t}"], "--to"),
        (lambda t: ["--to", f"file://{t.parent}"], "--to"),  # the tree inside the destination
        (lambda t: ["--to", f"file://{t.parent / 'elsewhere'}", "--work-dir", str(t / "work")], "--work-dir"),
        (lambda t: ["--to", f"file://{t.parent / 'elsewhere'}", "--work-dir", str(t.parent)], "--work-dir"),
    ],
    ids=["to-inside", "to-is-dir", "dir-inside-to", "work-inside", "dir-inside-work"],
)
def test_a_destination_overlapping_the_tree_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: object, flag: str
) -> None:
    tree = make_tree(tmp_path / "data" / "wsrc", TREE)
    before = entries_under(tmp_path)
    assert callable(where)
    assert main(publish_argv(tree, *where(tree))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and str(tree) in err[0] and "Traceback" not in err[0]
    assert entries_under(tmp_path) == before  # nothing created, nothing packed


def test_a_symlink_into_the_tree_is_an_overlap_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_tree(tmp_path / "wsrc", TREE)
    (tmp_path / "alias").symlink_to(tree)
    assert main(publish_argv(tree, "--to", f"file://{tmp_path / 'alias' / 'out'}")) == 2
    assert "--to" in capsys.readouterr().err
    assert not (tree / "out").exists()


def test_the_work_dir_publish_made_is_gone_after_success_and_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_tree(tmp_path / "wsrc", TREE)
    work = tmp_path / "work" / "a" / "b"
    assert main(publish_argv(tree, "--to", f"file://{tmp_path / 'ok'}", "--work-dir", str(work))) == 0
    assert not (tmp_path / "work").exists()

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "objects").write_text("a file where the data type's directory would go")
    assert main(publish_argv(tree, "--to", f"file://{broken}", "--work-dir", str(work))) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "work").exists()

    kept = tmp_path / "mine"
    kept.mkdir()
    (kept / "notes.txt").write_text("the user's")
    assert main(publish_argv(tree, "--to", f"file://{tmp_path / 'ok2'}", "--work-dir", str(kept))) == 0
    assert entries_under(kept) == ["notes.txt"]
    assert tree_snapshot(tree) == tree_snapshot(make_tree(tmp_path / "again", TREE))


# ------------------------------------------------- item 2: the remote holds what the manifest names

WRITABLE = [b for b in BACKENDS if "write" in b.capabilities]


@pytest.fixture(params=[b.name for b in WRITABLE])
def backend(request: pytest.FixtureRequest) -> Backend:
    (chosen,) = [b for b in WRITABLE if b.name == request.param]
    return chosen.fixture(request)


def version_files(remote: Remote, key: VersionKey = KEY) -> list[str]:
    return sorted(f.path.removeprefix(f"{key.rel}/") for f in remote.list_files(key.rel))


def named_by_manifest(remote: Remote, key: VersionKey = KEY) -> list[str]:
    manifest = json.loads(remote.read_bytes(f"{key.rel}/{DSCACHE_MANIFEST}"))
    return sorted([*manifest["archives"], *METADATA])


def test_overwrite_leaves_only_what_the_new_manifest_names(backend: Backend, tmp_path: Path) -> None:
    backend.put("README.md", b"the remote exists (an HF repo is not created by publish)")
    remote = backend.open()
    options = PublishOptions(archive_size=4 << 10)
    publish(make_tree(tmp_path / "big", TREE), remote, KEY, options)
    backend.put(f"{KEY.rel}/notes.txt", b"the user's, not dscache's")  # added beside the version
    remote = backend.open()  # an HF remote reads the revision it resolved when opened
    assert len(version_files(remote)) == 4 + 3 + 1

    result = publish(make_tree(tmp_path / "small", SMALL), remote, KEY, replace(options, overwrite=True))
    assert version_files(remote) == sorted([*named_by_manifest(remote), "notes.txt"])
    # the three archives the small tree no longer has, and the old a_0000: the new one holds other
    # bytes, so it went up under a fresh name (a reader of the old manifest never gets them)
    assert [p.removeprefix(f"{KEY.rel}/") for p in result.removed] == [
        "a_0000.tar.zst",
        "b_0001.tar.zst",
        "c_0002.tar.zst",
        "d_0003.tar.zst",
    ]
    assert [a.name for a in result.archives] == [fresh_name("a_0000.tar.zst", result.archives[0].sha256)]
    offered = offered_versions(remote.list_files(""))
    assert [(o.key, o.files, o.incomplete) for o in offered] == [(KEY, 5, False)]


class KilledAfter(FileRemote):
    """A file remote whose process dies (here: raises) on the `puts`-th upload."""

    def __init__(self, root: Path, puts: int) -> None:
        super().__init__(root)
        self.left = puts

    def put_file(self, path: str, local: Path) -> None:
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt
        super().put_file(path, local)


def test_a_killed_publish_is_shown_incomplete_and_a_rerun_finishes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_tree(tmp_path / "tree", TREE)
    root = tmp_path / "remote"
    with pytest.raises(KeyboardInterrupt):
        publish(tree, KilledAfter(root, 3), KEY, PublishOptions(archive_size=4 << 10))
    assert sorted(p.name for p in (root / KEY.rel).iterdir()) == ["a_0000.tar.zst", "b_0001.tar.zst"]

    assert main(["ls-remote", f"file://{root}", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["versions"]
    assert [(v["version"], v["layout"], v.get("incomplete")) for v in listed] == [("v1", "Archives", True)]
    assert main(["ls-remote", f"file://{root}"]) == 0
    out, err = capsys.readouterr()
    assert "Archives (incomplete publish)" in out and "Files" not in out
    assert "objects/w=v1: incomplete publish" in err and "run the same `dscache publish` again" in err

    # the rerun (of a tree that changed meanwhile) needs no --overwrite and leaves no stray archive
    smaller = make_tree(tmp_path / "smaller", SMALL)
    assert main(publish_argv(smaller, "--to", f"file://{root}")) == 0
    remote = FileRemote(root)
    assert version_files(remote) == named_by_manifest(remote) == sorted(["a_0000.tar.zst", *METADATA])
    capsys.readouterr()
    assert main(["ls-remote", f"file://{root}"]) == 0
    assert "incomplete" not in capsys.readouterr().out


def test_stale_paths_are_only_what_publish_writes() -> None:
    listing = [
        "objects/w/v1/a_0000.tar.zst",
        "objects/w/v1/b_0001.tar.zst",
        "objects/w/v1/shards/00003.tar",
        "objects/w/v1/mine.tar.zst",
        "objects/w/v1/notes/c_0002.tar.zst",
        "objects/w/v10/a_0000.tar.zst",
        f"objects/w/v1/{DSCACHE_MANIFEST}",
    ]
    kept = {"objects/w/v1/a_0000.tar.zst", f"objects/w/v1/{DSCACHE_MANIFEST}"}
    assert stale_paths(listing, "objects/w/v1", kept) == [
        "objects/w/v1/b_0001.tar.zst",
        "objects/w/v1/shards/00003.tar",
    ]


def test_a_failed_publish_of_a_new_version_leaves_nothing_on_the_remote(tmp_path: Path) -> None:
    class FailsOnThirdUpload(FileRemote):
        calls = 0

        def put_file(self, path: str, local: Path) -> None:
            self.calls += 1
            if self.calls == 3:
                raise RemoteError("disk full")
            super().put_file(path, local)

    root = tmp_path / "remote"
    root.mkdir()
    with pytest.raises(RemoteError, match="disk full"):
        publish(make_tree(tmp_path / "tree", TREE), FailsOnThirdUpload(root), KEY, PublishOptions(4 << 10))
    assert entries_under(root) == []


def test_plain_trees_of_tarballs_stay_files_versions() -> None:
    def listing(*paths: str) -> list[RemoteFile]:
        return [RemoteFile(p, 10) for p in paths]

    plain = listing(
        "objects/web/v1/shards/00001.tar",  # a webdataset-like tree
        "objects/mix/v1/part_0001.tar.zst",
        "objects/mix/v1/README.md",
        "objects/deep/v1/data/part_0001.tar.zst",
    )
    offered = offered_versions(plain)
    assert [(str(o.key), o.layout, o.incomplete) for o in offered] == [
        ("objects/deep=v1", "Files", False),
        ("objects/mix=v1", "Files", False),
        ("objects/web=v1", "Files", False),
    ]
    killed = listing("objects/k/v4/a_0000.tar.zst", f"objects/k/v4/{MOLMO_COMBINED_TRIES}")
    assert [(str(o.key), o.layout, o.incomplete) for o in offered_versions(killed)] == [
        ("objects/k=v4", "Archives", True)
    ]
    assert offered_versions(killed, layout="Files")[0].incomplete is False


def test_overwrite_removes_the_archives_the_replaced_version_named(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    vdir = root / KEY.rel
    vdir.mkdir(parents=True)
    (vdir / "thor-upstream.tar.zst").write_bytes(b"an archive another producer published")
    (vdir / MOLMO_REMOTE_MANIFEST).write_text(json.dumps({"thor-upstream.tar.zst": 1}))
    (vdir / "LICENSE").write_text("not part of the version")
    options = PublishOptions(archive_size=4 << 10, overwrite=True)
    result = publish(make_tree(tmp_path / "tree", SMALL), FileRemote(root), KEY, options)
    assert result.removed == [f"{KEY.rel}/thor-upstream.tar.zst"]
    assert files_under(vdir) == sorted(["LICENSE", "a_0000.tar.zst", *METADATA])
