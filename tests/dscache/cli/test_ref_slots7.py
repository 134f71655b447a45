"""What a ref names after `install --source` adds to it, and refs that name what is not there: the
per-item settings a `-f` install gave a slot survive a command-line install of that slot; env names
that collide are refused at install time; a ref naming a version that is gone is reported by
`verify` and `status`, and `prepare` fails at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import assert_one_clean_line, run
from tests.factories import make_tree, publish_archives

THOR = VersionKey("objects", "thor", "v1")
THOR2 = VersionKey("objects", "thor", "v2")
ITHOR = VersionKey("scenes", "ithor", "7")
A_DASH = VersionKey("objects", "a-b", "v1")
A_DOT = VersionKey("objects", "a.b", "v1")


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("remote7")
    remote = base / "remote"
    for key in (THOR, THOR2, ITHOR, A_DASH, A_DOT):
        tree = make_tree(base / "trees" / key.rel, {"x/one.txt": f"{key}\n", "two.bin": 3000})
        publish_archives(tree, remote, key, archive_size=1 << 20)
    return remote


def manifest(path: Path, remote: Path) -> Path:
    path.write_text(
        "apiVersion: dscache.io/v1alpha1\nkind: DatasetCache\nmetadata: {name: train, namespace: team}\n"
        f"spec:\n  source:\n    file: {{path: {remote}}}\n  versions:\n"
        "  - {dataType: objects, source: thor, version: v1, envName: THOR_DIR}\n"
        '  - {dataType: scenes, source: ithor, version: "7", link: PerFile}\n'
    )
    return path


def ref_entries(cache: Path, name: str) -> dict[str, dict[str, object]]:
    doc = json.loads(CachePaths(cache).ref_path(name).read_text())
    return {f"{e['data_type']}/{e['source']}": e for e in doc["versions"]}


def source_install(cache: Path, remote: Path, *versions: VersionKey, ref: str = "team.train") -> list[str]:
    args = ["install", "--cache", str(cache), "--source", f"file://{remote}", "--ref", ref]
    return [*args, *(a for v in versions for a in ("--version", str(v)))]


# item 2: a ref's per-item settings the command line cannot express


def test_a_source_install_of_the_same_versions_keeps_env_name_and_link(tmp_path: Path, remote: Path) -> None:
    cache = tmp_path / "cache"
    assert run("install", "--cache", str(cache), "-f", str(manifest(tmp_path / "dc.yaml", remote))).code == 0
    before = ref_entries(cache, "team.train")
    assert run(*source_install(cache, remote, THOR, ITHOR)).code == 0
    after = ref_entries(cache, "team.train")
    assert after["objects/thor"]["env"] == "THOR_DIR" and after["scenes/ithor"]["link_strategy"] == "perFile"
    assert after == before


def test_a_new_version_of_a_slot_keeps_that_slots_env_name(tmp_path: Path, remote: Path) -> None:
    cache = tmp_path / "cache"
    assert run("install", "--cache", str(cache), "-f", str(manifest(tmp_path / "dc.yaml", remote))).code == 0
    assert run(*source_install(cache, remote, THOR2)).code == 0
    after = ref_entries(cache, "team.train")
    assert after["objects/thor"]["version"] == "v2" and after["objects/thor"]["env"] == "THOR_DIR"
    assert after["scenes/ithor"]["link_strategy"] == "perFile"


# item 4: derived env names that collide


def test_source_install_refuses_a_source_whose_env_name_another_already_has(
    tmp_path: Path, remote: Path
) -> None:
    cache = tmp_path / "cache"
    assert run(*source_install(cache, remote, A_DASH)).code == 0
    result = run(*source_install(cache, remote, A_DOT))
    assert_one_clean_line(
        result, 2, "objects/a.b", "objects/a-b", "DSCACHE_OBJECTS_A_B", "envName", "release"
    )
    assert set(ref_entries(cache, "team.train")) == {"objects/a-b"}
    assert not CachePaths(cache).version_dir(A_DOT).exists()  # refused before anything was installed


def test_source_install_refuses_a_source_whose_derived_name_an_env_name_took(
    tmp_path: Path, remote: Path
) -> None:
    cache = tmp_path / "cache"
    dc = tmp_path / "dc.yaml"
    dc.write_text(
        "apiVersion: dscache.io/v1alpha1\nkind: DatasetCache\nmetadata: {name: train, namespace: team}\n"
        f"spec:\n  source:\n    file: {{path: {remote}}}\n  versions:\n"
        "  - {dataType: objects, source: thor, version: v1, envName: DSCACHE_OBJECTS_A_B}\n"
    )
    assert run("install", "--cache", str(cache), "-f", str(dc)).code == 0
    result = run(*source_install(cache, remote, A_DOT))
    assert_one_clean_line(result, 2, "objects/a.b", "objects/thor", "DSCACHE_OBJECTS_A_B")


@pytest.mark.parametrize("extra", [["--dry-run"], ["--workers", "2", "--worker-index", "1"]])
def test_a_dry_run_and_a_team_worker_refuse_the_same_pair(
    tmp_path: Path, remote: Path, extra: list[str]
) -> None:
    cache = tmp_path / "cache"
    assert run(*source_install(cache, remote, A_DASH)).code == 0
    result = run(*source_install(cache, remote, A_DOT), *extra)
    assert_one_clean_line(result, 2, "objects/a.b", "objects/a-b", "DSCACHE_OBJECTS_A_B")
    assert set(ref_entries(cache, "team.train")) == {"objects/a-b"}
