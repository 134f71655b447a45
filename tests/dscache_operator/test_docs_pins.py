"""README says what a `dscache.io/versions` pin does (podpatch.resolve): the pod's versions are fixed
at admission for every source, the unpinned ones at the spec's requested versions (so a pinned pod
waits for an install in progress), and a PerFile item refuses every pin. It said "the others follow
the cache"."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscache_operator.podpatch import Denied
from tests.dscache_operator.test_podpatch import DIRECTORY_ONLY, cache, inject, pod

README = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
PIN = {"dscache.io/versions": "objects/procthor/extra=v1"}


def versions(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "--version"]


def test_a_pinned_pod_gets_the_requested_versions_of_its_other_sources_and_readme_says_so() -> None:
    # objects/thor: v1 installed (what the ref serves), v2 requested (its install in progress)
    c = cache(DIRECTORY_ONLY, installed=("objects/thor=v1", "objects/procthor/extra=v1", "scenes/ithor=v7"))
    args = inject(pod(PIN), c)["spec"]["initContainers"][0]["args"]
    assert "--ref" not in args
    assert versions(args) == ["objects/procthor/extra=v1", "objects/thor=v2", "scenes/ithor=v7"]
    assert "the others follow the cache" not in README
    others = "every other source at the version `spec.versions` requests at that moment, not the one the ref"
    assert others in README
    assert "a pinned pod waits in its init container" in README


def test_a_per_file_item_refuses_every_pin_and_readme_says_so() -> None:
    with pytest.raises(Denied, match="links scenes/ithor PerFile"):
        inject(pod(PIN))  # the pin names another source than the PerFile one
    assert "A DatasetCache with any `link: PerFile` item refuses every pin" in README
