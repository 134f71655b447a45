"""`dscache publish --overwrite` while an install of the version runs: the install planned from the old
manifest. The new archives never reuse a name the old manifest names for other bytes, and the old
ones go only after the switch; an install that then asks for an old archive says the remote was
republished (not a digest error), and the next install gets the new version. A Hugging Face install
reads one pinned commit, so a republish does not disturb it at all."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from dscache.api.manifest import source_from_url
from dscache.api.names import VersionKey
from dscache.api.spec import DatasetCacheSpec
from dscache.cli.app import main
from dscache.cli.render import JsonSink
from dscache.install.pipeline import InstallRun, install
from dscache.layouts.manifest import DSCACHE_MANIFEST
from dscache.layouts.plan import VersionPlan
from dscache.layouts.published import is_publish_output
from dscache.publish.stale import fresh_name
from dscache.publish.upload import PublishOptions, publish
from dscache.remotes.factory import open_remote
from dscache.remotes.file import FileRemote
from dscache.store.paths import CachePaths
from tests.factories import TreeSpec, dataset_snapshot, make_tree, tree_snapshot, version_items
from tests.servers.gcs import GcsEnv
from tests.servers.hub import FakeHub
from tests.servers.s3 import S3Env

KEY = VersionKey("objects", "w", "v1")
OLD: TreeSpec = {"a/one.txt": 3000, "b/two.txt": 3000}
NEW: TreeSpec = {"a/one.txt": 5000, "b/two.txt": 2000}  # the same archive names (a_0000, b_0001)
OPTIONS = PublishOptions(archive_size=4 << 10, threads=1)
OVERWRITE = replace(OPTIONS, overwrite=True)
REPUBLISHED = f"dscache: error: {KEY}: the remote was republished while installing: install again"


def _republish_after_planning(monkeypatch: pytest.MonkeyPatch, republish: Callable[[], None]) -> None:
    """The concurrent producer: `republish()` runs once the install has read the version's metadata and
    before it downloads an archive."""
    planned = InstallRun.plan

    def plan_then_republish(self: InstallRun, missing: list[VersionKey]) -> list[VersionPlan]:
        plans = planned(self, missing)
        republish()
        return plans

    monkeypatch.setattr(InstallRun, "plan", plan_then_republish)


def _install(cache: Path, url: str) -> int:
    return main(["install", "-q", "--cache", str(cache), "--source", url, "--version", str(KEY)])


@pytest.mark.parametrize("kind", ["file", "s3", "gcs"])
def test_an_install_racing_an_overwrite_says_republished_then_installs_the_new_version(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    kind: str,
) -> None:
    if kind == "s3":
        s3: S3Env = request.getfixturevalue("s3")
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
        url = f"s3://{s3.bucket}/mirror"
    elif kind == "gcs":
        gcs: GcsEnv = request.getfixturevalue("gcs")
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint)
        url = f"gs://{gcs.bucket}/mirror"
    else:
        url = f"file://{tmp_path / 'remote'}"
    remote = open_remote(source_from_url(url, flag="--to"))
    old, new = make_tree(tmp_path / "old", OLD), make_tree(tmp_path / "new", NEW)
    publish(old, remote, KEY, OPTIONS)
    cache = tmp_path / "cache"
    with monkeypatch.context() as racing:
        _republish_after_planning(racing, lambda: publish(new, remote, KEY, OVERWRITE) and None)
        assert _install(cache, url) == 1
    assert capsys.readouterr().err.splitlines() == [REPUBLISHED]
    assert not CachePaths(cache).version_dir(KEY).exists()

    assert _install(cache, url) == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(new)


def test_an_overwrite_with_the_same_bytes_keeps_the_names(tmp_path: Path) -> None:
    remote = open_remote(source_from_url(f"file://{tmp_path / 'remote'}", flag="--to"))
    tree = make_tree(tmp_path / "tree", OLD)
    first = publish(tree, remote, KEY, OPTIONS)
    again = publish(tree, remote, KEY, OVERWRITE)
    assert (
        [a.name for a in again.archives]
        == [a.name for a in first.archives]
        == [
            "a_0000.tar.zst",
            "b_0001.tar.zst",
        ]
    )
    assert again.removed == []


def test_a_hub_install_racing_an_overwrite_gets_the_commit_it_pinned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub: FakeHub
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.create_repo("org/assets")
    url = "hf://datasets/org/assets/mujoco"
    old, new = make_tree(tmp_path / "old", OLD), make_tree(tmp_path / "new", NEW)
    argv = ["publish", "-q", "--to", url, "--version", str(KEY), "--archive-size", "4KiB", "--hf-shards"]
    assert main([argv[0], str(old), *argv[1:]]) == 0

    def republish() -> None:
        assert main([argv[0], str(new), *argv[1:], "--overwrite"]) == 0

    _republish_after_planning(monkeypatch, republish)
    cache = tmp_path / "cache"
    assert _install(cache, url) == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(old)


def test_a_fresh_name_carries_the_digest_and_stays_a_name_publish_writes() -> None:
    name = fresh_name("objects_0007.tar.zst", "ABCDEF0123456789" + "0" * 48)
    assert name == "objects-abcdef012345_0007.tar.zst"
    assert is_publish_output(name)


class _MidSwitch(FileRemote):
    """A file remote read while publish switches the metadata: the first read of the dscache manifest
    gets the replaced version's (the new one lands right after)."""

    def __init__(self, root: Path, old_manifest: bytes) -> None:
        super().__init__(root)
        self.old_manifest: bytes | None = old_manifest

    def read_bytes(self, path: str) -> bytes:
        if path.endswith(DSCACHE_MANIFEST) and self.old_manifest is not None:
            old, self.old_manifest = self.old_manifest, None
            return old
        return super().read_bytes(path)


def test_planning_in_the_middle_of_the_metadata_switch_gets_the_new_version(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    remote = FileRemote(root)
    old, new = make_tree(tmp_path / "old", OLD), make_tree(tmp_path / "new", NEW)
    publish(old, remote, KEY, OPTIONS)
    old_manifest = remote.read_bytes(f"{KEY.rel}/{DSCACHE_MANIFEST}")
    publish(new, remote, KEY, OVERWRITE)
    spec = DatasetCacheSpec.model_validate(
        {"source": {"file": {"path": str(root)}}, "versions": version_items(str(KEY))}
    )
    cache = tmp_path / "cache"
    mid_switch = _MidSwitch(root, old_manifest)
    install(spec, cache, "default", JsonSink(io.StringIO()), jobs=1, remote_factory=lambda _s: mid_switch)
    assert mid_switch.old_manifest is None  # the stale manifest was read, and planning read again
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(new)


def test_a_version_without_digests_is_not_overwritten_in_place_either(tmp_path: Path) -> None:
    """A molmospaces-only version (no dscache manifest): other bytes go up under fresh names, the
    same bytes (read back and hashed) keep theirs."""
    remote = FileRemote(tmp_path / "remote")
    molmo_only = replace(OPTIONS, dscache_manifest=False)
    publish(make_tree(tmp_path / "old", OLD), remote, KEY, molmo_only)
    again = publish(make_tree(tmp_path / "same", OLD), remote, KEY, replace(molmo_only, overwrite=True))
    assert [a.name for a in again.archives] == ["a_0000.tar.zst", "b_0001.tar.zst"]
    changed = publish(make_tree(tmp_path / "new", NEW), remote, KEY, replace(molmo_only, overwrite=True))
    planned = ["a_0000.tar.zst", "b_0001.tar.zst"]
    assert [a.name for a in changed.archives] == [
        fresh_name(name, a.sha256) for name, a in zip(planned, changed.archives, strict=True)
    ]
    assert changed.removed == [f"{KEY.rel}/a_0000.tar.zst", f"{KEY.rel}/b_0001.tar.zst"]
