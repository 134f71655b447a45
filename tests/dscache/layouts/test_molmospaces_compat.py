"""A cache built by dscache is a valid pre-populated cache for molmospaces-resources 0.0.2 readers.

The reader runs with `cache_lock=False` (the leader/readers pattern of their README) against a remote
that is down: everything must come from the cache, through their own manifests, flags and tries.
"""

from __future__ import annotations

from pathlib import Path

from dscache.api.names import VersionKey
from dscache.cli.app import main
from tests.factories import make_tree, publish_archives, tree_snapshot
from tests.servers.files import FileServer

OBJECTS = VersionKey("objects", "thor", "20250101")
ROBOTS = VersionKey("robots", "franka", "v3")


def test_molmospaces_reader_uses_the_dscache_cache(tmp_path: Path, http_server: FileServer) -> None:
    from molmospaces_resources import R2RemoteStorage, setup_resource_manager

    objects = make_tree(tmp_path / "objects", {f"thor/obj{i}/model.xml": 500 + i for i in range(20)})
    robots = make_tree(tmp_path / "robots", {"franka/arm.xml": 800, "franka/meshes/link0.obj": 3000})
    publish_archives(objects, http_server.root, OBJECTS, archive_size=4096)
    publish_archives(robots, http_server.root, ROBOTS, archive_size=2048)
    cache = tmp_path / "cache"
    argv = ["install", "--cache", str(cache), "--source", http_server.url]
    assert main([*argv, "--version", str(OBJECTS), "--version", str(ROBOTS)]) == 0
    url = http_server.url
    http_server.stop()
    http_server.log.clear()

    links = tmp_path / "assets"
    versions = {"objects": {"thor": OBJECTS.version}, "robots": {"franka": ROBOTS.version}}
    mgr = setup_resource_manager(
        R2RemoteStorage(url), symlink_dir=links, versions=versions, cache_dir=cache, cache_lock=False
    )
    assert len(http_server.log) == 0
    seen_objects = {
        k: v
        for k, v in tree_snapshot(links / "objects" / "thor").items()
        if not k.startswith(("mjthor_", ".", "dscache-"))
    }
    assert seen_objects == tree_snapshot(objects)
    assert (links / "robots" / "franka" / "franka" / "arm.xml").read_bytes() == (
        robots / "franka" / "arm.xml"
    ).read_bytes()
    assert (links / "robots" / "franka" / "franka" / "arm.xml").is_symlink()
    assert sorted(mgr.find_all_packages_for_source("robots", "franka"))
