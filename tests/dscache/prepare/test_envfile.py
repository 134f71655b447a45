"""The env file and JSON output a workload consumes."""

from __future__ import annotations

import subprocess

import pytest

from dscache.api.envnames import derived_name
from dscache.api.names import parse_version_arg
from dscache.store.records import RefEntry
from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, run_cli, write_ref


@pytest.mark.parametrize(
    ("version", "name"),
    [
        ("objects/thor=v1", "DSCACHE_OBJECTS_THOR"),
        ("scenes/proc-thor/houses.v2=x", "DSCACHE_SCENES_PROC_THOR_HOUSES_V2"),
    ],
)
def test_derived_names_are_shell_identifiers(version: str, name: str) -> None:
    assert derived_name(parse_version_arg(version)) == name


def test_env_file_sourced_by_sh_gives_the_link_paths(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v1", {"f.txt": b"objects"})
    publish_version(dirs.cache, "scenes/proc-thor=v1", {"s.txt": b"scenes"})
    entries = [RefEntry("objects", "thor", "v1", env="THOR_DIR"), RefEntry("scenes", "proc-thor", "v1")]
    write_ref(dirs.cache, "pod", entries)
    env_file = dirs.cache.parent / "dscache.env"
    links = dirs.cache.parent / "it's $HOME `x`"
    result = run_cli(*dirs.args("--ref", "pod", "--env-file", str(env_file), links=links))
    assert result.code == 0, result.err
    assert result.out == env_file.read_text()
    script = '. "$1" && printf "%s\\n" "$DSCACHE_ROOT" "$THOR_DIR"'
    script += ' && cat "$THOR_DIR/f.txt" "$DSCACHE_SCENES_PROC_THOR/s.txt"'
    shown = subprocess.run(
        ["sh", "-c", script, "sh", str(env_file)], capture_output=True, text=True, check=True
    )
    assert shown.stdout.splitlines() == [str(links), f"{links}/objects/thor", "objectsscenes"]


def test_json_output_has_the_same_env(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v1", {"f.txt": b"1"})
    result = run_cli(*dirs.args("--version", "objects/thor=v1", "--json"))
    out = result.json()
    assert out["env"] == {
        "DSCACHE_ROOT": str(dirs.links),
        "DSCACHE_OBJECTS_THOR": f"{dirs.links}/objects/thor",
    }
    assert out["versions"][0]["target"] == str(dirs.scratch / "objects" / "thor" / "v1")


def test_colliding_variable_names_are_a_usage_error_even_before_publication(dirs: Dirs) -> None:
    result = run_cli(*dirs.args("--version", "objects/a-b=v1", "--version", "objects/a_b=v1", "--wait", "60"))
    assert result.code == 2
    assert "DSCACHE_OBJECTS_A_B is already used" in result.err


def test_invalid_variable_name_from_the_ref_is_a_usage_error(dirs: Dirs) -> None:
    write_ref(dirs.cache, "pod", [RefEntry("objects", "thor", "v1", env="1-BAD")])
    result = run_cli(*dirs.args("--ref", "pod"))
    assert result.code == 2
    assert "'1-BAD' is not a valid environment variable name" in result.err
