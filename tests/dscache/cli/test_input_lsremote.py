"""`ls-remote` shows the versions whose names dscache refuses, as not installable, with the reason
(h6-input, finding 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dscache.api.names import NameError_, check_segment
from tests.dscache.cli.cli_helpers import run

REASON = (
    "source 'ünï' is not a safe name: '/'-separated segments of only ASCII letters and digits (A-Z, a-z, "
    "0-9) and the characters . _ + = @ - (no segment starting with '.' or '-', no '/' at the ends, at "
    "most 255 characters)"
)


def _remote(root: Path, *sources: str) -> Path:
    for source in sources:
        (root / "objects" / source / "v1").mkdir(parents=True)
        (root / "objects" / source / "v1" / "a.txt").write_text("hi\n")
    return root


def test_names_it_will_not_install_are_listed_as_such_with_the_reason(tmp_path: Path) -> None:
    remote = _remote(tmp_path / "r", "has space", "ünï", "ok")
    result = run("ls-remote", f"file://{remote}")
    assert result.code == 0
    assert result.out.splitlines() == [
        "DATA TYPE  SOURCE     VERSION  LAYOUT  FILES  SIZE  INSTALLABLE",
        "objects    has space  v1       Files   1      3 B   NO (below)",
        "objects    ok         v1       Files   1      3 B   yes",
        "objects    ünï        v1       Files   1      3 B   NO (below)",
        "not installable: objects/has space/v1: " + REASON.replace("'ünï'", "'has space'"),
        f"not installable: objects/ünï/v1: {REASON}",
        "2 of 3 versions are not installable: dscache refuses their names",
    ]


def test_json_marks_them_and_counts_them(tmp_path: Path) -> None:
    remote = _remote(tmp_path / "r", "ünï", "ok")
    doc = json.loads(run("ls-remote", "--json", str(remote)).out)
    assert doc["notInstallable"] == 1
    assert [(v["source"], v.get("installable"), v.get("notInstallableBecause")) for v in doc["versions"]] == [
        ("ok", None, None),
        ("ünï", False, REASON),
    ]


def test_a_tree_of_only_such_names_does_not_say_there_are_no_versions(tmp_path: Path) -> None:
    remote = _remote(tmp_path / "r", "ünï")
    result = run("ls-remote", str(remote))
    assert result.code == 0
    assert result.out.splitlines()[-1] == (
        f"no installable versions under file://{remote}: the 1 found have names dscache refuses"
    )


def test_the_refusal_says_exactly_which_characters_are_allowed() -> None:
    with pytest.raises(NameError_) as caught:
        check_segment("ünï", "version")
    assert "only ASCII letters and digits (A-Z, a-z, 0-9) and the characters . _ + = @ -" in str(caught.value)
