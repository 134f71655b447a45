"""What a newcomer ran into: `DSCACHE_PART_SIZE=8Mi` refused while sizes are quantities everywhere else,
`ls-remote` refusing `file:/dir` that `install` takes, a bare directory path refused with "got 'none'",
and an unquoted version in a manifest (`2025.10`, read by YAML as 2025.1) refused with no hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscache.install.parts import PartPolicy
from tests.dscache.cli.cli_helpers import assert_one_clean_line, run
from tests.factories import make_tree

V = "objects/toys=v1"
MANIFEST = """\
apiVersion: dscache.io/v1alpha1
kind: DatasetCache
metadata: {{name: toys}}
spec:
  source: {{file: {{path: {remote}}}}}
  layout: Files
  versions:
    - {{dataType: objects, source: toys, version: {version}}}
"""


def _remote(tmp_path: Path) -> Path:
    remote = tmp_path / "remote"
    make_tree(remote / "objects" / "toys" / "v1", {f"f{i}.bin": 100 + i for i in range(3)})
    return remote


def test_part_size_takes_a_quantity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSCACHE_PART_SIZE", "8Mi")
    assert PartPolicy.from_env().min_part == 8388608
    url = f"file://{_remote(tmp_path)}"
    result = run(
        "install", "-q", "--cache", str(tmp_path / "c"), "--source", url, "--layout", "files", "--version", V
    )
    assert result.code == 0, result


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("DSCACHE_STREAMS", "8Mi", "must be a whole number >= 1 (a count, not a size)"),
        ("DSCACHE_PART_SIZE", "0", "must be at least 1 byte"),
        ("DSCACHE_PART_SIZE", "8MB", "MB is ambiguous"),
        ("DSCACHE_PART_SIZE", "16", "a part of 16 bytes is under the smallest part, 64Ki"),
    ],
)
def test_a_count_or_size_variable_says_which_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(name, value)
    result = run("install", "--cache", str(tmp_path / "c"), "--source", f"file://{tmp_path}", "--version", V)
    assert_one_clean_line(result, 2, f"{name}={value!r}", reason)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("form", ["file:{remote}", "file://{remote}", "{remote}", "./remote", "remote"])
def test_ls_remote_and_install_take_the_same_source_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    remote = _remote(tmp_path)
    monkeypatch.chdir(tmp_path)
    source = form.format(remote=remote)
    listed = run("ls-remote", source, "--layout", "files", "--json")
    assert listed.code == 0, listed
    assert f'"remote": "file://{remote}"' in listed.out
    installed = run("install", "-q", "--cache", "c", "--source", source, "--layout", "files", "--version", V)
    assert installed.code == 0, installed
    assert sorted(p.name for p in (tmp_path / "c" / "objects" / "toys" / "v1").glob("f*")) == [
        "f0.bin",
        "f1.bin",
        "f2.bin",
    ]


@pytest.mark.parametrize(
    ("argv", "flag"), [(["ls-remote"], "SOURCE"), (["install", "--version", V, "--source"], "--source")]
)
def test_a_path_that_is_no_directory_says_what_to_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], flag: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(*argv, "./missing", "--cache", "c")
    assert_one_clean_line(
        result, 2, f"{flag} './missing': not a URL", "use file:///absolute/path or a directory path"
    )
    assert "got 'none'" not in result.err


@pytest.mark.parametrize(
    ("version", "hint"),
    [
        (
            "2025.10",
            "spec.versions[0].version: YAML read the number 2025.1, not a string: write the value in quotes, "
            'e.g. "2025.10" if you meant 2025.10',
        ),
        ("1", 'spec.versions[0].version: YAML read the number 1, not a string: write it in quotes ("1")'),
        (
            "yes",
            "spec.versions[0].version: YAML read the boolean true, not a string: write the value in quotes",
        ),
    ],
)
def test_an_unquoted_version_says_what_yaml_read_and_to_quote_it(
    tmp_path: Path, version: str, hint: str
) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST.format(remote=_remote(tmp_path), version=version))
    result = run("install", "-f", str(manifest), "--cache", str(tmp_path / "c"))
    assert_one_clean_line(result, 2, hint)
    assert "Input should be a valid string" not in result.err
    assert not (tmp_path / "c").exists()
