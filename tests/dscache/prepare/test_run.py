"""`prepare` as a library call: no argparse namespace, the same results and errors as the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dscache.api.names import parse_version_arg
from dscache.cli.exits import exit_code
from dscache.prepare.request import RequestError
from dscache.prepare.run import PrepareRequest, PrepareTimeoutError, prepare
from dscache.store.records import RefEntry
from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, write_ref


def test_prepare_links_a_ref_and_writes_the_env_file(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v1", {"a.txt": b"hello"})
    write_ref(dirs.cache, "ml.thor", [RefEntry("objects", "thor", "v1", env="THOR_DIR")])
    env_file = dirs.cache.parent / "env.sh"
    logged: list[str] = []

    result = prepare(
        PrepareRequest(cache=dirs.cache, links=dirs.links, ref="ml.thor", env_file=env_file), logged.append
    )

    assert result.env == {"DSCACHE_ROOT": str(dirs.links), "THOR_DIR": f"{dirs.links}/objects/thor"}
    assert (dirs.links / "objects" / "thor" / "a.txt").read_bytes() == b"hello"
    assert os.readlink(dirs.links / "objects" / "thor").startswith("../")  # relative link
    assert env_file.read_text() == (
        f"export DSCACHE_ROOT='{dirs.links}'\nexport THOR_DIR='{dirs.links}/objects/thor'\n"
    )
    (version,) = result.to_json()["versions"]
    assert version == {
        "dataType": "objects",
        "source": "thor",
        "version": "v1",
        "linkStrategy": "directory",
        "location": "cache",
        "target": str(dirs.cache / "objects" / "thor" / "v1"),
        "copied": False,
    }
    assert logged == []


def test_prepare_explicit_versions_onto_scratch(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v2", {"f": b"12345"})
    request = PrepareRequest(
        cache=dirs.cache,
        links=dirs.links,
        versions=(parse_version_arg("objects/thor=v2"),),
        scratch=dirs.scratch,
    )
    result = prepare(request)
    (placement,) = result.placements
    assert placement.on_scratch and placement.copied
    assert placement.path == dirs.scratch / "objects" / "thor" / "v2"
    assert (dirs.links / "objects" / "thor" / "f").read_bytes() == b"12345"
    assert result.exports == (
        f"export DSCACHE_ROOT='{dirs.links}'\nexport DSCACHE_OBJECTS_THOR='{dirs.links}/objects/thor'\n"
    )


def test_prepare_times_out_naming_the_missing_version(dirs: Dirs) -> None:
    request = PrepareRequest(
        cache=dirs.cache, links=dirs.links, versions=(parse_version_arg("scenes/ithor=7"),)
    )
    with pytest.raises(PrepareTimeoutError) as caught:
        prepare(request)
    assert str(caught.value) == (
        "timed out after 0s waiting for 1 version(s) to be published:\n"
        f"  scenes/ithor=7 ({dirs.cache / 'scenes' / 'ithor' / '7'})"
    )
    assert exit_code(caught.value) == 3
    assert not dirs.links.exists()


def test_prepare_rejects_two_versions_of_one_source_before_waiting(dirs: Dirs) -> None:
    keys = (parse_version_arg("objects/thor=v1"), parse_version_arg("objects/thor=v2"))
    with pytest.raises(RequestError, match="objects/thor is requested at two versions: v1 and v2") as caught:
        prepare(PrepareRequest(cache=dirs.cache, links=dirs.links, versions=keys, wait=3600))
    assert exit_code(caught.value) == 2


def test_prepare_missing_ref_times_out(dirs: Dirs) -> None:
    with pytest.raises(PrepareTimeoutError, match=r"ref 'ml\.none' does not exist in "):
        prepare(PrepareRequest(cache=dirs.cache, links=Path(dirs.links), ref="ml.none"))
