"""Versions whose paths on the volume would meet are refused by the one spec model the CLI, the
webhook and the reconciler share: a source inside another of its data type, names apart only by case."""

from __future__ import annotations

import pytest

from dscache.api.spec import SpecError, parse_spec
from tests.factories import version_items

NESTED = (
    "spec.versions: versions[1] (objects/a/b) lies inside versions[0] (objects/a): pods link each source at "
    "<mountPath>/<dataType>/<source>, so its link would sit inside the other's published version; give one "
    "of them a source that is not a prefix of the other"
)


def _spec(*versions: str, **fields: dict[str, str]) -> dict[str, object]:
    return {"source": {"s3": {"bucket": "b"}}, "versions": version_items(*versions, **fields)}


def test_a_source_inside_another_of_its_data_type_is_refused_naming_both() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(_spec("objects/a=v1", "objects/a/b=v1"))
    assert str(err.value) == NESTED


def test_the_outer_source_listed_second_is_refused_too() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(_spec("objects/a/b/c=v2", "scenes/x=1", "objects/a=v1"))
    assert str(err.value).startswith(
        "spec.versions: versions[2] (objects/a) holds inside it versions[0] (objects/a/b/c): pods link each "
        "source at <mountPath>/<dataType>/<source>, so the other's link would sit inside this one's"
    )


def test_sources_that_differ_only_in_case_are_refused_even_with_their_own_env_names() -> None:
    spec = _spec("objects/Thor=v1", "objects/thor=v1", envName={"objects/Thor": "A", "objects/thor": "B"})
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    assert str(err.value) == (
        "spec.versions: versions[1] (objects/thor) differs only in case from versions[0] (objects/Thor): "
        "on a case-insensitive volume (SMB, Azure Files, macOS) both are one directory, mixing two datasets; "
        "name them apart by more than case"
    )


def test_nesting_is_found_across_case_too() -> None:
    with pytest.raises(
        SpecError, match=r"versions\[1\] \(objects/A/b\) lies inside versions\[0\] \(objects/a\)"
    ):
        parse_spec(_spec("objects/a=v1", "objects/A/b=v1"))


@pytest.mark.parametrize(
    "versions",
    [
        ("objects/a=v1", "objects/ab=v1", "objects/a.b=v1"),  # a prefix by characters, not by segment
        ("objects/a=v1", "scenes/a/b=v1"),  # another data type: another directory
        ("objects/a/b=v1", "objects/a/c=v1"),  # siblings
    ],
)
def test_paths_that_do_not_meet_are_accepted(versions: tuple[str, ...]) -> None:
    assert [i.slot for i in parse_spec(_spec(*versions)).versions] == [v.partition("=")[0] for v in versions]


def test_the_rest_of_the_family_stays_refused() -> None:
    """Duplicate entries and one variable for two items were refused before; the order of the checks
    keeps their messages."""
    with pytest.raises(SpecError, match=r"versions\[1\] repeats dataType/source objects/a of versions\[0\]"):
        parse_spec(_spec("objects/a=v1", "objects/a=v1"))
    with pytest.raises(SpecError, match="gets environment variable X, as versions"):
        parse_spec(_spec("objects/a=v1", "scenes/b=v1", envName={"objects/a": "X", "scenes/b": "X"}))
