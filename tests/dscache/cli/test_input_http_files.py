"""Files layout over plain HTTP: refused up front with advice that leads somewhere (h6-input,
finding 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscache.api.spec import SpecError, parse_spec
from tests.dscache.cli.cli_helpers import run


def test_files_over_http_is_refused_up_front_naming_what_works(tmp_path: Path) -> None:
    cache = tmp_path / "c"
    result = run(
        "install", "--source", "http://127.0.0.1:9/r2", "--layout", "Files", "--version", "objects/a=v1",
        "--cache", str(cache),
    )  # fmt: skip
    assert result.code == 2 and len(result.lines) == 1
    line = result.lines[0]
    assert line.startswith(
        "dscache: error: --layout Files with --source http://127.0.0.1:9/r2: plain http(s) "
    )
    assert "Archives layout only" in line and "use an s3, gcs, azure, huggingFace or file source" in line
    assert "use a manifest" not in line and not cache.exists()


def test_the_shared_model_refuses_the_pair_for_the_operator_too() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(
            {
                "source": {"http": {"url": "https://data.example.com/r"}},
                "layout": "Files",
                "versions": [{"dataType": "objects", "source": "a", "version": "v1"}],
            }
        )
    assert str(caught.value).startswith("spec.layout: Files with spec.source.http: plain http(s) cannot list")


def test_readme_no_longer_claims_every_source_works_in_both_layouts() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    assert "Every source works for `install` and `publish`, in both layouts." not in readme
    assert "it serves the Archives layout only" in readme
