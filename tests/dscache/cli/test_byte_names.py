"""Each byte count has one name with one meaning: `sharedBytes` is always extracted content on the
volume (status); what an install took from another version instead of downloading is
`sharedItemBytes` (remote items: archives as stored, compressed)."""

from __future__ import annotations

import json
from pathlib import Path

from dscache.api.names import VersionKey
from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree, publish_archives

V1, V2 = VersionKey("objects", "toys", "v1"), VersionKey("objects", "toys", "v2")


def test_install_event_and_status_name_shared_bytes_apart(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", {"a.bin": 3000, "b.bin": 5000})
    remote = tmp_path / "remote"
    for key in (V1, V2):  # the same tree twice: v2's archives are v1's
        publish_archives(tree, remote, key, archive_size=1 << 20)
    archives = sum(p.stat().st_size for p in (remote / V2.rel).glob("*.tar.zst"))
    cache = tmp_path / "cache"
    source = ["--cache", str(cache), "--source", remote.as_uri()]
    assert run("install", *source, "--version", str(V1)).code == 0
    result = run("install", *source, "--version", str(V2), "--json")
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    [published] = [e for e in events if e["event"] == "version_published"]
    assert published["sharedItemBytes"] == archives and "sharedBytes" not in published
    status = json.loads(run("status", "--cache", str(cache), "--json").out)
    rows = {v["version"]: v for v in status["versions"]}
    assert rows["v2"]["sharedBytes"] == 8000  # a.bin and b.bin, extracted, linked from v1
