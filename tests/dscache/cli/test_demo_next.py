"""The commands `dscache demo` suggests under "Try next" run on the demo cache as they are printed and
leave it with its one ref, `demo` (the install suggestion made a second ref, `default`)."""

from __future__ import annotations

import shlex
from pathlib import Path

from dscache.store.catalog import catalog
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import run


def suggestions(out: str) -> list[list[str]]:
    """The suggested commands, as argument lists without the leading `dscache`."""
    lines = out.split("Try next:", 1)[1].splitlines()
    return [shlex.split(line)[1:] for line in lines if line.strip().startswith("dscache ")]


def test_every_suggested_command_runs_and_the_cache_keeps_only_the_demo_ref(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    demo = run("demo", "--dir", str(work))
    assert demo.code == 0, demo
    commands = suggestions(demo.out)
    assert [c[0] for c in commands] == ["status", "verify", "prepare", "install", "gc"]
    for command in commands:
        result = run(*command)
        assert result.code == 0, (command, result)
    cache = work / "cache"
    assert sorted(p.name for p in (cache / ".dscache" / "refs").iterdir()) == ["demo.json"]
    assert [(str(i.key), i.refs) for i in catalog(CachePaths(cache))] == [
        ("objects/toys=v1", ["demo"]),
        ("scenes/kitchen=2025.1", ["demo"]),
    ]
