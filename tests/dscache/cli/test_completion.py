"""`dscache completion bash|zsh|fish`: scripts generated from the parser, checked in the real shells."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.dscache.cli.cli_helpers import run

BASH_PROBE = """
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=()
_dscache
printf '%s\\n' "${COMPREPLY[@]}"
"""


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("completion")
    paths = {}
    for shell in ("bash", "zsh", "fish"):
        result = run("completion", shell)
        assert result.code == 0 and result.err == "", result
        paths[shell] = out / f"dscache.{shell}"
        paths[shell].write_text(result.out)
    return paths


def _bash(script: Path, *words: str) -> list[str]:
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", BASH_PROBE, "probe", str(script), "dscache", *words],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert proc.stderr == ""
    return sorted(line for line in proc.stdout.splitlines() if line)


def test_bash_completes_commands_flags_choices_and_paths(scripts: dict[str, Path], tmp_path: Path) -> None:
    script = scripts["bash"]
    assert _bash(script, "") == sorted(
        ["install", "prepare", "status", "verify", "gc", "release", "ls-remote", "publish", "demo",
         "completion", "-h", "--help", "--version", "-q", "--quiet", "-v", "--verbose"]
    )  # fmt: skip
    assert _bash(script, "pre") == ["prepare"]
    assert _bash(script, "install", "--dr") == ["--dry-run"]
    assert _bash(script, "-v", "install", "--ca") == ["--cache"]
    assert _bash(script, "prepare", "--scratch-") == [
        "--scratch-hold-max",
        "--scratch-keep-recent",
        "--scratch-max-bytes",
    ]
    assert _bash(script, "gc", "--") == sorted(
        ["--help", "--cache", "--keep", "--protect", "--in-use", "--dry-run", "--staging-max-age", "--json",
         "--lock-timeout", "--quiet", "--verbose"]
    )  # fmt: skip
    assert _bash(script, "install", "--layout", "") == ["Archives", "Files"]
    assert _bash(script, "completion", "") == ["bash", "fish", "zsh"]
    (tmp_path / "cache-a").mkdir()
    (tmp_path / "cache-b").mkdir()
    (tmp_path / "cache.yaml").write_text("")
    assert _bash(script, "status", "--cache", f"{tmp_path}/ca") == [
        f"{tmp_path}/cache-a",
        f"{tmp_path}/cache-b",
    ]
    assert _bash(script, "install", "-f", f"{tmp_path}/cache.") == [f"{tmp_path}/cache.yaml"]
    assert _bash(script, "publish", f"{tmp_path}/cache") == [f"{tmp_path}/cache-a", f"{tmp_path}/cache-b"]
    assert _bash(script, "install", "--jobs", "") == []  # a number: nothing to suggest


def test_the_scripts_are_static(scripts: dict[str, Path]) -> None:
    """Completing never starts Python or dscache: the scripts only hold words and shell builtins."""
    for path in scripts.values():
        body = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#"))
        assert "python" not in body and "dscache completion" not in body and "$(dscache" not in body


def test_zsh_and_fish_scripts_load_and_complete(scripts: dict[str, Path]) -> None:
    zsh, fish = shutil.which("zsh"), shutil.which("fish")
    text = scripts["zsh"].read_text()
    assert (
        text.startswith("#compdef dscache")
        and "'--layout[with --source\\: Archives (the default) or Files, any case]:LAYOUT:(Archives Files)'"
        in text
    )
    if zsh:
        subprocess.run([zsh, "-n", str(scripts["zsh"])], check=True, timeout=30)
        loaded = subprocess.run(
            [
                zsh,
                "-f",
                "-c",
                f"autoload -U compinit; compinit -u; source {scripts['zsh']}; print $_comps[dscache]",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert loaded.stdout.strip() == "_dscache"
    text = scripts["fish"].read_text()
    assert (
        "complete -c dscache -n '__fish_seen_subcommand_from install' -l layout -x -a 'Archives Files'"
        in text
    )
    if fish:
        probe = (
            f"source {scripts['fish']}; complete -C 'dscache ins'; complete -C 'dscache install --layout '"
        )
        done = subprocess.run([fish, "-c", probe], capture_output=True, text=True, timeout=30, check=True)
        assert [line.split("\t")[0] for line in done.stdout.splitlines()] == ["install", "Archives", "Files"]


def test_an_unknown_shell_is_a_usage_error() -> None:
    result = run("completion", "tcsh")
    assert result.code == 2 and "invalid choice: 'tcsh'" in result.err
