"""The workload's environment variables: one rule for the pod webhook and `prepare`."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from dscache.api.envnames import EnvNameError, build_env
from dscache.api.names import VersionKey, parse_version_arg
from dscache.prepare.envfile import build_env as prepare_env
from dscache.prepare.request import Wanted

THOR = parse_version_arg("objects/thor=v1")
PART = parse_version_arg("objects/objaverse/part-1=v2")


def test_named_and_derived_variables_point_at_stable_link_paths() -> None:
    env = build_env(PurePosixPath("/dscache"), [(THOR, "THOR_DIR"), (PART, None)])
    assert env == {
        "DSCACHE_ROOT": "/dscache",
        "THOR_DIR": "/dscache/objects/thor",
        "DSCACHE_OBJECTS_OBJAVERSE_PART_1": "/dscache/objects/objaverse/part-1",
    }


def test_prepare_exports_exactly_what_the_webhook_injects() -> None:
    sources = [(THOR, None), (PART, "PART")]
    webhook = build_env(PurePosixPath("/dscache"), sources)
    prepare = prepare_env(Path("/dscache"), [Wanted(k, "perFile", name) for k, name in sources])
    assert prepare == webhook


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ([(THOR, "1THOR")], "objects/thor=v1: '1THOR' is not a valid environment variable name"),
        (
            [(THOR, "X"), (PART, "X")],
            "objects/objaverse/part-1=v2: environment variable X is already used; name it in the spec",
        ),
        ([(THOR, "DSCACHE_ROOT")], "objects/thor=v1: environment variable DSCACHE_ROOT is already used"),
    ],
)
def test_bad_names_are_refused_naming_the_version(
    sources: list[tuple[VersionKey, str | None]], message: str
) -> None:
    with pytest.raises(EnvNameError) as caught:
        build_env(PurePosixPath("/d"), sources)
    assert str(caught.value).startswith(message)
