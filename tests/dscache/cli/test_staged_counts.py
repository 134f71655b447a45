"""`dscache status` and `install --dry-run` count an interrupted install's staging the same way
(`store.staged.tally`): status shows the bytes on disk and how much a rerun can reuse; dry-run shows what
a rerun reuses (checked against the remote) beside that same on-disk number, and says why they differ."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.api.sizes import format_size
from dscache.api.spec import DatasetCacheSpec
from dscache.cli.render import JsonSink
from dscache.install.pipeline import InstallError, install
from dscache.remotes.base import Pin, RemoteError
from dscache.remotes.file import FileRemote
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import run
from tests.factories import content_for, make_tree, publish_archives, version_items
from tests.servers.files import FileServer

KEY = VersionKey("objects", "many", "v1")
SMALL = 4000
CUT = 100_000  # at most 256 KiB: a file fetched again whole, with no resume record


class _CutTheLast(FileRemote):
    """A local remote whose download of `z.bin` breaks after its first chunk, every time: the install
    fails with the small files finished and a partial copy of `z.bin` in staging."""

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        for chunk in super().stream(path, offset, length, pin):
            yield chunk
            if path.endswith("z.bin"):
                raise RemoteError(f"{path}: connection lost (test)")


def test_status_and_dry_run_count_the_same_staging_and_say_why_they_differ(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    files = {f"a{i}.bin": content_for(f"a{i}", SMALL) for i in range(5)}
    make_tree(remote / KEY.rel, {**files, "z.bin": content_for("z", CUT)})
    spec = DatasetCacheSpec.model_validate(
        {"source": {"file": {"path": str(remote)}}, "layout": "Files", "versions": version_items(str(KEY))}
    )
    cache, cut = tmp_path / "cache", _CutTheLast(remote)
    with pytest.raises(InstallError, match="connection lost"):
        install(spec, cache, "default", JsonSink(io.StringIO()), jobs=1, remote_factory=lambda _s: cut)
    staging = CachePaths(cache).staging_dir(KEY)
    done = len(list((staging / "files").iterdir()))  # small files finished before the install gave up
    parts = sorted(p.stat().st_size for p in (staging / "parts").iterdir())  # z.bin's, and those cut short
    assert CUT in parts
    left, disk = sum(parts), done * SMALL + sum(parts)

    allocated = sum(p.lstat().st_blocks * 512 for p in staging.rglob("*") if p.is_file())  # as du
    [stage] = json.loads(run("status", "--cache", str(cache), "--json").out)["staging"]
    assert stage["path"] == str(staging)
    assert {k: stage[k] for k in stage if k not in ("ageSeconds", "published", "version", "path")} == {
        "bytes": disk,
        "diskBytes": allocated,
        "items": done,
        "itemBytes": done * SMALL,
        "partialFiles": len(parts),
        "partialBytes": left,
        "resumableFiles": 0,
        "resumableBytes": 0,
        "leftoverBytes": left,
    }
    text = run("status", "--cache", str(cache)).out
    assert (
        f"  {KEY}: {format_size(allocated)} on disk ({format_size(disk)} of file content): "
        f"{done} finished item(s), {len(parts)} partial file(s) "
        f"(0 resumable); a rerun reuses up to {format_size(done * SMALL)}, {format_size(left)} fetched "
        "again; last touched"
    ) in text, text

    argv = ["--cache", str(cache), "--source", f"file://{remote}", "--layout", "Files", "--version", str(KEY)]
    [version] = json.loads(run("install", "--dry-run", "--json", *argv).out)["versions"]
    assert {k: version[k] for k in ("itemsStaged", "bytesStaged", "partialFiles", "bytesToFetch")} == {
        "itemsStaged": done,
        "bytesStaged": done * SMALL,
        "partialFiles": 0,
        "bytesToFetch": (5 - done) * SMALL + CUT,
    }
    assert (version["bytesInStaging"], version["partialFilesInStaging"]) == (disk, len(parts))
    dry = run("install", "--dry-run", *argv).out
    assert (
        f"{format_size(disk)} of file content in staging, as `dscache status` counts it, archives at their "
        f"extracted size: {format_size(left)} of it is not reused: {len(parts)} partial file(s) without a "
        "resume record or of another object)"
    ) in dry, dry


def test_after_kill_9_in_an_extraction_both_say_the_extracted_bytes_are_not_reused(
    http_server: FileServer, tmp_path: Path
) -> None:
    """The newcomer's case: status showed 113 KiB staged, dry-run 0 bytes staged, with no reason."""
    tree = make_tree(tmp_path / "t", {f"big/{i:02}.bin": content_for(f"b{i}", 50_000) for i in range(40)})
    publish_archives(tree, http_server.root, KEY, 4 << 20)
    [archive] = (http_server.root / KEY.rel).glob("*.tar.zst")
    # silent before its last bytes: the extraction, which lags the download by its read-ahead, has
    # written some of the files when the install is killed
    http_server.faults.stall(seconds=60, after=archive.stat().st_size - 2000, path=f"*/{archive.name}")
    cache = tmp_path / "cache"
    argv = ["--cache", str(cache), "--source", http_server.url, "--version", str(KEY)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dscache", "install", *argv, "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes its workers too
    )
    archives = CachePaths(cache).staging_dir(KEY) / "archives"

    def extracted() -> list[int]:
        return [p.stat().st_size for p in archives.glob("*.d.*/**/*.bin") if p.is_file()]

    deadline = time.monotonic() + 60
    while sum(extracted()) < 100_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    disk = sum(extracted())
    assert disk >= 100_000

    [stage] = json.loads(run("status", "--cache", str(cache), "--json").out)["staging"]
    assert {k: stage[k] for k in ("bytes", "items", "itemBytes", "leftoverBytes")} == {
        "bytes": disk,
        "items": 0,
        "itemBytes": 0,
        "leftoverBytes": disk,
    }
    assert (
        f"a rerun reuses up to 0 B, {format_size(disk)} fetched again"
        in run("status", "--cache", str(cache)).out
    )
    http_server.faults.clear()
    [version] = json.loads(run("install", "--dry-run", "--json", *argv).out)["versions"]
    assert (version["bytesStaged"], version["bytesInStaging"]) == (0, disk)
    assert (
        f"({format_size(disk)} of file content in staging, as `dscache status` counts it, archives at their "
        f"extracted size: {format_size(disk)} of it is not reused: unfinished archive extractions)"
    ) in run("install", "--dry-run", *argv).out
