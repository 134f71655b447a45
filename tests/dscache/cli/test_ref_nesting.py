"""Installs by flags add to a ref one source at a time, past the spec model's check of one spec: a
source that would nest in (or differ only in case from) one the ref names already is refused before
anything is fetched, naming both, instead of a ref every `prepare` refuses."""

from __future__ import annotations

from pathlib import Path

from dscache.store.paths import CachePaths
from dscache.store.records import read_ref
from tests.dscache.cli.cli_helpers import assert_one_clean_line, run
from tests.factories import make_tree


def test_a_source_nested_in_one_the_ref_names_is_refused_before_any_transfer(tmp_path: Path) -> None:
    remote, cache = tmp_path / "remote", tmp_path / "cache"
    make_tree(remote / "objects" / "a" / "v1", {"x.txt": 10})
    make_tree(remote / "objects" / "a" / "b" / "v1", {"y.txt": 10})
    source = ["--cache", str(cache), "--source", f"file://{remote}", "--layout", "Files"]
    assert run("install", *source, "--version", "objects/a=v1").code == 0
    result = run("install", *source, "--version", "objects/a/b=v1")
    assert_one_clean_line(
        result,
        1,
        "dscache: error: ref default would name objects/a/b=v1 and objects/a=v1, and objects/a/b lies inside "
        "objects/a: pods could not link both; install it under another --ref (or give ref default exactly "
        "the versions it should name with install -f) (nothing was installed)",
    )
    paths = CachePaths(cache)
    assert not (cache / "objects" / "a" / "b").exists()
    ref = read_ref(paths, "default")
    assert ref is not None and [str(e.key) for e in ref.versions] == ["objects/a=v1"]
    assert run("install", *source, "--version", "objects/a/b=v1", "--ref", "inner").code == 0
