"""`dscache install -f FILE` takes the whole spec from the file: a flag whose part of the spec the file
gives (--layout was silently ignored; --version was refused) is refused, naming each such flag and
the field of the file to set instead, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscache.cli.app import main

MANIFEST = """\
apiVersion: dscache.io/v1alpha1
kind: DatasetCache
metadata: {name: local}
spec:
  source: {file: {path: %s}}
  layout: Files
  versions: [{dataType: objects, source: thor, version: v1}]
"""


def manifest(tmp_path: Path) -> Path:
    """A DatasetCache of a plain file tree (layout Files) with one version, objects/thor=v1."""
    remote = tmp_path / "remote"
    (remote / "objects" / "thor" / "v1").mkdir(parents=True)
    (remote / "objects" / "thor" / "v1" / "a.txt").write_text("a")
    path = tmp_path / "dsc.yaml"
    path.write_text(MANIFEST % remote)
    return path


def refused(tmp_path: Path, *flags: str) -> None:
    code = main(["install", "-f", str(manifest(tmp_path)), "--cache", str(tmp_path / "cache"), *flags])
    assert code == 2
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--layout", "Files"], "--layout (set spec.layout in the file)"),
        (["--layout", "archives"], "--layout (set spec.layout in the file)"),
        (["--version", "objects/thor=v2"], "--version (set spec.versions in the file)"),
        (["--source", "file:///elsewhere"], "--source (set spec.source in the file)"),
        (
            ["--allow-pattern", "*.txt"],
            "--allow-pattern (set spec.source.huggingFace.allowPatterns in the file)",
        ),
        (
            ["--ignore-pattern", "*.md"],
            "--ignore-pattern (set spec.source.huggingFace.ignorePatterns in the file)",
        ),
    ],
)
def test_a_flag_the_file_overrides_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], named: str
) -> None:
    refused(tmp_path, *flags)
    assert capsys.readouterr().err == f"dscache: error: -f takes the whole spec from its file; drop {named}\n"


def test_every_overridden_flag_is_named_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused(tmp_path, "--layout", "Files", "--version", "objects/thor=v2")
    assert capsys.readouterr().err == (
        "dscache: error: -f takes the whole spec from its file; drop --version (set spec.versions in the "
        "file), --layout (set spec.layout in the file)\n"
    )


def test_flags_that_apply_with_the_file_still_work(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = ["install", "-f", str(manifest(tmp_path)), "--cache", str(cache), "--ref", "mine", "--jobs", "2"]
    assert main(args) == 0
    assert (cache / "objects" / "thor" / "v1" / "a.txt").read_text() == "a"


def test_help_does_not_say_version_adds_to_a_file_ref(capsys: pytest.CaptureFixture[str]) -> None:
    """-f refuses --version, so `install --help` must not say --version adds to the file's ref."""
    with pytest.raises(SystemExit):
        main(["install", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "-f sets the ref to the file's versions; --source with --version adds to it" in text
    assert "versions, --version adds to it" not in text
