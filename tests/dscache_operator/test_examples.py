"""The DatasetCache examples are valid specs (the cluster tests also apply them server-side)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscache.api.manifest import load_manifest

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("datasetcache-*.yaml"))


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"datasetcache-s3.yaml", "datasetcache-huggingface.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_a_valid_datasetcache(path: Path) -> None:
    manifest = load_manifest(path)
    assert manifest.spec.volume is not None, "in a cluster every DatasetCache needs a volume"
