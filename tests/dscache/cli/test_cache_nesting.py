"""`install --cache` refuses a directory inside another cache's published version or control directory,
or one inside another cache that holds some of its versions, with one line and nothing written; a
cache elsewhere inside another one stays allowed (that one's status, verify and gc skip it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscache.cli.app import main
from tests.factories import make_tree


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture
def cx(tmp_path: Path) -> Path:
    """A cache holding objects/odd=v1 and v2 (from a files remote at tmp_path/remote)."""
    for version in ("v1", "v2"):
        make_tree(tmp_path / "remote" / "objects" / "odd" / version, {"a.txt": version, "sub/b.txt": "b"})
    cache = tmp_path / "cx"
    for version, ref in (("v1", "default"), ("v2", "two")):
        assert _install(cache, tmp_path, f"objects/odd={version}", "--ref", ref) == 0
    return cache


def _install(cache: Path, tmp_path: Path, version: str, *more: str) -> int:
    source = f"file://{tmp_path / 'remote'}"
    return main(["install", "-q", "--cache", str(cache), "--source", source, "--layout", "Files",
                 "--version", version, *more])  # fmt: skip


@pytest.mark.parametrize(
    ("inside", "says"),
    [
        ("objects/odd/v2", "{cx}/objects/odd/v2, a published version (its files never change)"),
        ("objects/odd/v2/sub/deeper", "{cx}/objects/odd/v2, a published version (its files never change)"),
        (".dscache/mine", "{cx}/.dscache, the control directory of the cache {cx}"),
        ("objects/odd", "the cache {cx} and around its published version {cx}/objects/odd/v1"),
    ],
)
def test_a_cache_inside_another_ones_versions_or_control_dir_is_refused(
    cx: Path, tmp_path: Path, inside: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(cx)
    capsys.readouterr()
    assert _install(cx / inside, tmp_path, "objects/odd=v1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"dscache: error: --cache {cx / inside}: inside {says.format(cx=cx)}"), err
    assert _tree(cx) == before  # nothing written, not even a directory
    assert main(["verify", "--cache", str(cx)]) == 0


def test_a_cache_elsewhere_in_another_one_is_allowed(cx: Path, tmp_path: Path) -> None:
    assert _install(cx / "mine", tmp_path, "objects/odd=v1") == 0
    assert (cx / "mine" / "objects" / "odd" / "v1" / "a.txt").read_text() == "v1"
    assert main(["verify", "--cache", str(cx)]) == 0
