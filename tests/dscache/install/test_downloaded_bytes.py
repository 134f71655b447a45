"""`downloadedBytes` is what a run received from the remote: a rerun after `kill -9` that resumes a file
fetched in parts counts only the parts it fetched (what `--dry-run` said it would fetch, and what the
server sent), and says in `resumedBytes` what it kept of the earlier run. Failed before the fix: the
resumed file was counted at its full size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import run
from tests.dscache.install.test_install_parts import kill_once_parts_done
from tests.factories import content_for
from tests.servers.s3 import S3Env

KEY = VersionKey("objects", "thor", "v1")
MIB = 1 << 20


def test_a_resumed_install_counts_only_the_bytes_it_fetched(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = content_for("weights", 8 * MIB)
    s3.put(f"models/{KEY.rel}/weights.bin", weights)
    s3.put(f"models/{KEY.rel}/config.json", b'{"layers": 12}')  # 14 bytes, fetched after weights.bin
    # The first three parts' answers come at once; every later one stalls after 256 KiB.
    s3.server.faults.delay(0, times=3, path="*/weights.bin")
    s3.server.faults.stall(30, after=256 << 10, times=None, path="*/weights.bin")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("DSCACHE_PART_SIZE", "1Mi")
    monkeypatch.setenv("DSCACHE_STREAMS", "2")
    cache = tmp_path / "cache"
    args = ["--cache", str(cache), "--source", f"s3://{s3.bucket}/models", "--layout", "files"]
    args += ["--version", str(KEY), "--jobs", "1"]
    staging = kill_once_parts_done(args, cache, KEY, 3)
    assert not (staging / "files").exists(), "nothing was finished before the kill"
    s3.server.faults.clear()

    dry = run("install", "--dry-run", "--json", *args)
    assert dry.code == 0, dry
    predicted = json.loads(dry.out)["bytesToFetch"]
    s3.server.log.clear()
    rerun = run("install", "--json", *args)
    assert rerun.code == 0, rerun
    [done] = [e for e in map(json.loads, rerun.out.splitlines()) if e["event"] == "done"]
    sent = sum(r.sent for r in s3.server.log.find(f"*/{KEY.rel}/*", method="GET"))

    # Parts 0-2 (3 MiB) were on disk and recorded: the rerun fetched the five others and config.json.
    assert sent == 5 * MIB + 14
    assert done["downloadedBytes"] == sent
    assert predicted == sent  # the dry run counts recorded parts, as the rerun skips them: exact
    assert done["resumedBytes"] == 3 * MIB
    assert (CachePaths(cache).version_dir(KEY) / "weights.bin").read_bytes() == weights
