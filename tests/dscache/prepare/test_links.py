"""Links: relative, per-file trees where `../` works, atomic re-pointing and stale link removal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dscache.store.records import RefEntry
from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, run_cli, write_ref

READER = """
import json, os, sys
path, stop = sys.argv[1], sys.argv[2]
seen, reads, missing = set(), 0, 0
while not os.path.exists(stop):
    try:
        with open(path, "rb") as fh:
            seen.add(fh.read().decode())
        reads += 1
    except FileNotFoundError:
        missing += 1
print(json.dumps({"seen": sorted(seen), "reads": reads, "missing": missing}))
"""


def _ref(dirs: Dirs, strategy: str, *versions: tuple[str, str, str]) -> None:
    write_ref(
        dirs.cache, "pod", [RefEntry(dt, src, ver, link_strategy=strategy) for dt, src, ver in versions]
    )


def test_directory_link_is_relative_and_survives_moving_the_tree(dirs: Dirs, tmp_path: Path) -> None:
    publish_version(dirs.cache, "objects/thor=v1", {"f.txt": b"one"})
    assert run_cli(*dirs.args("--version", "objects/thor=v1", scratch=False)).code == 0
    assert os.readlink(dirs.links / "objects" / "thor") == "../../cache/objects/thor/v1"
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    tmp_path.rename(moved)
    try:
        assert (moved / "links" / "objects" / "thor" / "f.txt").read_bytes() == b"one"
    finally:
        moved.rename(tmp_path)


def test_per_file_tree_resolves_dotdot_between_files_and_sources(dirs: Dirs) -> None:
    publish_version(
        dirs.cache,
        "scenes/thor=v1",
        {"houses/h1/scene.xml": b"<scene/>", "assets/mesh.obj": b"mesh"},
        links={"houses/h1/mesh.obj": "../../assets/mesh.obj"},
    )
    publish_version(dirs.cache, "scenes/extra=v2", {"textures/wood.png": b"wood"})
    _ref(dirs, "perFile", ("scenes", "thor", "v1"), ("scenes", "extra", "v2"))
    assert run_cli(*dirs.args("--ref", "pod", scratch=False)).code == 0
    root = dirs.links / "scenes" / "thor"
    assert root.is_dir() and not root.is_symlink()
    assert (root / "houses" / "h1").is_dir() and not (root / "houses" / "h1").is_symlink()
    assert not os.path.isabs(os.readlink(root / "houses" / "h1" / "scene.xml"))
    assert (root / "houses" / "h1" / ".." / ".." / "assets" / "mesh.obj").read_bytes() == b"mesh"
    assert (root / "houses" / "h1" / "mesh.obj").read_bytes() == b"mesh"
    assert (root / ".." / "extra" / "textures" / "wood.png").read_bytes() == b"wood"
    assert not (root / ".dscache-complete.json").exists()


@pytest.mark.parametrize("strategy", ["directory", "perFile"])
def test_version_switch_never_leaves_the_path_missing(dirs: Dirs, tmp_path: Path, strategy: str) -> None:
    for v in ("v1", "v2"):
        publish_version(dirs.cache, f"objects/thor={v}", {"data.txt": v.encode(), "pad/x.bin": b"x" * 100})
    _ref(dirs, strategy, ("objects", "thor", "v1"))
    assert run_cli(*dirs.args("--ref", "pod")).code == 0
    stop = tmp_path / "stop"
    target = dirs.links / "objects" / "thor" / "data.txt"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(target), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        for i in range(40):
            _ref(dirs, strategy, ("objects", "thor", f"v{i % 2 + 1}"))
            result = run_cli(*dirs.args("--ref", "pod"))
            assert result.code == 0, result.err
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=30)
    seen = json.loads(out)
    assert seen["missing"] == 0
    assert seen["seen"] == ["v1", "v2"] and seen["reads"] > 0


def test_stale_links_are_removed(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v1", {"f.txt": b"1"})
    publish_version(dirs.cache, "scenes/procthor/houses=v1", {"s.txt": b"2"})
    both = ("--version", "objects/thor=v1", "--version", "scenes/procthor/houses=v1")
    assert run_cli(*dirs.args(*both, scratch=False)).code == 0
    assert (dirs.links / "scenes" / "procthor" / "houses" / "s.txt").read_bytes() == b"2"
    assert run_cli(*dirs.args("--version", "objects/thor=v1", scratch=False)).code == 0
    assert sorted(p.name for p in dirs.links.iterdir()) == [".dscache-links.json", "objects"]


def test_switching_strategy_replaces_link_by_tree_and_back(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v1", {"a/f.txt": b"1"})
    link = dirs.links / "objects" / "thor"
    for strategy, is_tree in (("directory", False), ("perFile", True), ("directory", False)):
        _ref(dirs, strategy, ("objects", "thor", "v1"))
        assert run_cli(*dirs.args("--ref", "pod", scratch=False)).code == 0
        assert link.is_symlink() != is_tree
        assert (link / "a" / "f.txt").read_bytes() == b"1"
    assert sorted(p.name for p in link.parent.iterdir()) == ["thor"]


def test_a_tampered_state_file_never_deletes_outside_the_links_dir(dirs: Dirs, tmp_path: Path) -> None:
    publish_version(dirs.cache, "objects/thor=v1", {"f.txt": b"1"})
    victim = tmp_path / "precious"
    victim.mkdir()
    dirs.links.mkdir()
    state = {"slots": {"../precious": {"strategy": "perFile", "target": "x"}, "a": {}}}
    (dirs.links / ".dscache-links.json").write_text(json.dumps(state))
    assert run_cli(*dirs.args("--version", "objects/thor=v1", scratch=False)).code == 0
    assert victim.is_dir()


def test_leftovers_of_a_killed_run_are_swept(dirs: Dirs) -> None:
    for v in ("v1", "v2"):
        publish_version(dirs.cache, f"objects/thor={v}", {"f.txt": v.encode()})
    _ref(dirs, "perFile", ("objects", "thor", "v1"))
    assert run_cli(*dirs.args("--ref", "pod", scratch=False)).code == 0
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    leftover = dirs.links / "objects" / f".thor.dscache-new.{dead.stdout.strip()}.cafe"
    (leftover / "half").mkdir(parents=True)  # a tree a killed run was building
    _ref(dirs, "perFile", ("objects", "thor", "v2"))
    assert run_cli(*dirs.args("--ref", "pod", scratch=False)).code == 0
    assert sorted(p.name for p in (dirs.links / "objects").iterdir()) == ["thor"]
    assert (dirs.links / "objects" / "thor" / "f.txt").read_bytes() == b"v2"
