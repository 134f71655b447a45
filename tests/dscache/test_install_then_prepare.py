"""The cache contract end to end: what `dscache install` publishes, `dscache prepare` exposes unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from tests.factories import Symlink, dataset_snapshot, make_tree, publish_archives, tree_snapshot

KEY = VersionKey("scenes", "kitchen", "v1")


@pytest.mark.parametrize("scratch", [False, True])
def test_prepared_tree_equals_the_published_tree(tmp_path: Path, scratch: bool) -> None:
    tree = make_tree(
        tmp_path / "tree",
        {
            "rooms/a.xml": 2000,
            "rooms/b.xml": 10,
            "shared/mesh.obj": 50_000,
            "rooms/mesh.obj": Symlink("../shared/mesh.obj"),
            "empty/nested": None,
        },
    )
    publish_archives(tree, tmp_path / "remote", KEY, archive_size=4096)
    cache, links = tmp_path / "cache", tmp_path / "links"
    assert (
        main(
            [
                "install",
                "--cache",
                str(cache),
                "--source",
                f"file://{tmp_path / 'remote'}",
                "--version",
                str(KEY),
            ]
        )
        == 0
    )
    args = ["prepare", "--cache", str(cache), "--links", str(links), "--ref", "default"]
    if scratch:
        args += ["--scratch", str(tmp_path / "scratch")]
    assert main(args) == 0
    assert dataset_snapshot(links / KEY.data_type / KEY.source) == tree_snapshot(tree)
    target = os.path.realpath(links / KEY.data_type / KEY.source)
    assert target.startswith(str(tmp_path / ("scratch" if scratch else "cache")))
