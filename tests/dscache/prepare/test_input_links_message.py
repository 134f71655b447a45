"""`prepare`'s refusal says what dscache made and what it did not (h6-input, finding 6b): a file put
into the per-file tree dscache made is named as the stranger, not the tree."""

from __future__ import annotations

from pathlib import Path

from dscache.store.records import RefEntry
from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, run_cli, write_ref


def test_a_file_added_to_dscaches_per_file_tree_is_named_and_the_tree_called_dscaches(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v1", {"a.txt": b"a\n", "sub/b.txt": b"b\n"})
    write_ref(dirs.cache, "pod", [RefEntry("objects", "thor", "v1", link_strategy="perFile")])
    assert run_cli(*dirs.args("--ref", "pod", scratch=False)).code == 0
    tree = dirs.links / "objects" / "thor"
    (tree / "sub" / "x").write_text("mine\n")
    result = run_cli(*dirs.args("--version", "objects/thor=v1", scratch=False))  # a directory link now
    assert result.code == 2
    assert result.err == (
        f"dscache: error: --links: {tree} is a per-file tree dscache made, but it now holds {tree}/sub/x, "
        "which dscache did not create; remove it or choose another --links directory\n"
    )
    assert (tree / "sub" / "x").read_text() == "mine\n"


def test_a_directory_nobody_recorded_is_not_called_foreign_only_what_it_holds(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v1", {"a.txt": b"a\n"})
    mine = dirs.links / "objects" / "thor"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("x\n")
    result = run_cli(*dirs.args("--version", "objects/thor=v1", scratch=False))
    assert result.code == 2
    assert f"{mine} is a directory holding {mine}/notes.txt, which dscache did not create" in result.err
    assert Path(mine / "notes.txt").read_text() == "x\n"
