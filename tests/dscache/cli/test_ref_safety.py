"""Refs guard what gc and release remove: an unreadable ref stops them, a mistyped --protect too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dscache.cli.cli_helpers import run

MANY = "objects/many=v1"
OTHER = "objects/other=v1"
BROKEN_REFS = {
    "bad JSON": '{"name":\n',
    "wrong shape": '["objects/many=v1"]',
    "versions not a list": '{"name": "b", "versions": "objects/many=v1"}',
    "an entry without a version": '{"name": "b", "versions": [{"data_type": "objects", "source": "many"}]}',
}


def _files_remote(tmp_path: Path) -> str:
    for source in ("many", "other"):
        version = tmp_path / "remote" / "objects" / source / "v1"
        version.mkdir(parents=True)
        (version / "data.txt").write_text(source)
    return f"file://{tmp_path / 'remote'}"


def _install(cache: Path, src: str, version: str, *more: str) -> None:
    args = ("install", "--cache", str(cache), "--source", src, "--layout", "Files", "--version", version)
    result = run(*args, *more)
    assert result.code == 0, result


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """MANY named by ref `a` and ref `b`, OTHER by ref `a` only."""
    src = _files_remote(tmp_path)
    cache = tmp_path / "cache"
    _install(cache, src, MANY, "--ref", "b")
    _install(cache, src, MANY, "--ref", "a", "--version", OTHER)
    return cache


def _published(cache: Path) -> list[str]:
    return sorted(f"objects/{p.parent.name}={p.name}" for p in cache.glob("objects/*/*") if p.is_dir())


@pytest.mark.parametrize("content", BROKEN_REFS.values(), ids=BROKEN_REFS.keys())
def test_gc_refuses_while_a_ref_is_unreadable_and_removes_nothing(cache: Path, content: str) -> None:
    ref = cache / ".dscache/refs/b.json"
    ref.write_text(content)
    (cache / ".dscache/refs/a.json").unlink()
    result = run("gc", "--cache", str(cache), "--keep", "0")
    assert result.code == 1
    (line,) = result.err.strip().splitlines()
    assert line.startswith(f"dscache: error: {ref}: unreadable ref (")
    assert line.endswith(
        f"fix or delete it (dscache release --cache {cache} --ref b drops it and removes nothing)"
    )
    assert _published(cache) == [MANY, OTHER]


def test_gc_refuses_when_a_ref_is_a_directory(cache: Path) -> None:
    (cache / ".dscache/refs/a.json").unlink()
    (cache / ".dscache/refs/b.json").unlink()
    (cache / ".dscache/refs/b.json").mkdir()
    result = run("gc", "--cache", str(cache), "--keep", "0")
    assert result.code == 1
    assert result.err.strip() == (
        f"dscache: error: {cache / '.dscache/refs/b.json'}: unreadable ref (a directory, not a file); "
        "delete it (dscache never makes a directory there)"
    )
    assert _published(cache) == [MANY, OTHER]
    assert run("release", "--cache", str(cache), "--ref", "b").code == 1
    assert (cache / ".dscache/refs/b.json").is_dir()


def test_release_keeps_what_an_unreadable_ref_may_name(cache: Path) -> None:
    (cache / ".dscache/refs/b.json").write_text('{"name":\n')
    result = run("release", "--cache", str(cache), "--ref", "a")
    assert result.code == 1
    assert f"{cache / '.dscache/refs/b.json'}: unreadable ref" in result.err
    assert _published(cache) == [MANY, OTHER]
    assert (cache / ".dscache/refs/a.json").is_file()


def test_release_of_the_unreadable_ref_itself_drops_only_its_file(cache: Path) -> None:
    (cache / ".dscache/refs/b.json").write_text('{"name":\n')
    result = run("release", "--cache", str(cache), "--ref", "b")
    assert result.code == 0, result
    assert not (cache / ".dscache/refs/b.json").exists()
    assert _published(cache) == [MANY, OTHER]
    assert run("gc", "--cache", str(cache), "--keep", "0").code == 0


def test_status_lists_an_unreadable_ref(cache: Path) -> None:
    ref = cache / ".dscache/refs/b.json"
    ref.write_text('{"name":\n')
    result = run("status", "--cache", str(cache), "--json")
    assert result.code == 0
    unreadable = json.loads(result.out)["unreadableRefs"]
    assert unreadable == [{"path": str(ref), "reason": "not JSON: Expecting value: line 2 column 1 (char 9)"}]
    text = run("status", "--cache", str(cache))
    assert f"dscache: warning: {ref}: unreadable ref" in text.err
    (cache / ".dscache/refs/a.json").unlink()
    rows = [line for line in run("status", "--cache", str(cache)).out.splitlines() if "objects" in line]
    assert [row.split("│")[-2].strip() for row in rows] == ["?", "?"]  # not "-": a ref may name them


def test_prepare_names_the_unreadable_ref(cache: Path, tmp_path: Path) -> None:
    ref = cache / ".dscache/refs/b.json"
    ref.write_text('{"name":\n')
    result = run("prepare", "--cache", str(cache), "--ref", "b", "--links", str(tmp_path / "links"))
    assert result.code != 0
    assert f"{ref}: unreadable ref" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("typo", ["objects/many=V1", "object/many=v1"])
@pytest.mark.parametrize("command", ["gc", "release"])
def test_a_protect_that_matches_no_version_is_an_error(cache: Path, typo: str, command: str) -> None:
    (cache / ".dscache/refs/b.json").unlink()
    args = ["--keep", "0"] if command == "gc" else ["--ref", "a"]
    result = run(command, "--cache", str(cache), *args, "--protect", typo)
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"dscache: error: --protect {typo}: no such version in {cache}; nothing removed "
        "(dscache status lists the versions)"
    ]
    assert _published(cache) == [MANY, OTHER]
    assert (cache / ".dscache/refs/a.json").is_file()


def test_in_use_versions_not_on_this_volume_are_ignored(cache: Path) -> None:
    """The operator's Jobs pass every version a pod in the namespace links, wherever it lives."""
    (cache / ".dscache/refs/a.json").unlink()
    (cache / ".dscache/refs/b.json").unlink()
    result = run("gc", "--cache", str(cache), "--keep", "0", "--in-use", MANY, "--in-use", "objects/gone=v9")
    assert result.code == 0, result
    assert _published(cache) == [MANY]


def _ref_versions(cache: Path, name: str) -> list[str]:
    data = json.loads((cache / f".dscache/refs/{name}.json").read_text())
    return [f"{e['data_type']}/{e['source']}={e['version']}" for e in data["versions"]]


def test_installs_by_flags_add_to_the_default_ref_so_gc_keeps_both(tmp_path: Path) -> None:
    src, cache = _files_remote(tmp_path), tmp_path / "cache"
    _install(cache, src, MANY)
    _install(cache, src, OTHER)
    assert _ref_versions(cache, "default") == [MANY, OTHER]
    result = run("gc", "--cache", str(cache), "--keep", "0")
    assert result.code == 0, result
    assert _published(cache) == [MANY, OTHER]


def test_a_new_version_of_a_source_replaces_the_old_one_in_the_ref_and_the_install_says_so(
    tmp_path: Path,
) -> None:
    src, cache = _files_remote(tmp_path), tmp_path / "cache"
    (tmp_path / "remote/objects/many/v2").mkdir()
    (tmp_path / "remote/objects/many/v2/data.txt").write_text("many 2")
    _install(cache, src, MANY)
    _install(cache, src, OTHER)
    args = (
        "install",
        "--cache",
        str(cache),
        "--source",
        src,
        "--layout",
        "Files",
        "--version",
        "objects/many=v2",
    )
    result = run(*args)
    assert result.code == 0, result
    assert (
        result.err.strip()
        .splitlines()[-1]
        .endswith(
            "; ref default no longer names objects/many=v1 (gc may remove it; --ref NAME keeps separate refs)"
        )
    )
    assert _ref_versions(cache, "default") == ["objects/many=v2", OTHER]
    assert json.loads(run(*args, "--json").out.strip().splitlines()[-1])["unreferenced"] == []


def test_an_install_from_a_manifest_sets_the_ref_and_names_what_it_no_longer_names(tmp_path: Path) -> None:
    src, cache = _files_remote(tmp_path), tmp_path / "cache"
    _install(cache, src, MANY, "--ref", "ml.objs", "--version", OTHER)
    manifest = tmp_path / "objs.yaml"
    manifest.write_text(
        "apiVersion: dscache.io/v1alpha1\nkind: DatasetCache\nmetadata: {name: objs, namespace: ml}\n"
        f"spec:\n  source: {{file: {{path: {tmp_path / 'remote'}}}}}\n  layout: Files\n"
        "  versions: [{dataType: objects, source: other, version: v1}]\n"
    )
    result = run("install", "-f", str(manifest), "--cache", str(cache))
    assert result.code == 0, result
    assert "; ref ml.objs no longer names objects/many=v1 (gc may remove it" in result.err
    assert _ref_versions(cache, "ml.objs") == [OTHER]


def test_an_install_by_a_team_of_workers_adds_to_the_ref_too(tmp_path: Path) -> None:
    src, cache = _files_remote(tmp_path), tmp_path / "cache"
    _install(cache, src, MANY)
    for index in ("0", "1"):
        _install(cache, src, OTHER, "--workers", "2", "--worker-index", index)
    assert _ref_versions(cache, "default") == [MANY, OTHER]
