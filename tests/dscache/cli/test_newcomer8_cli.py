"""What a platform engineer new to dscache ran into on a laptop (round 8): `spec.install.workers` in
a file installed with `-f` silently meaning nothing here, and the plain `published` line giving the
commit's time as if it were the version's, and `install --dry-run` putting the bytes written past the
recorded parts of the partial files it resumes down to the files it does not resume."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import dscache.cli.gc
import dscache.cli.install
from dscache.api.names import VersionKey
from dscache.cli.dryrun import VersionFetch, _not_reused
from dscache.cli.render import PlainSink
from dscache.store.staged import Tally
from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree


def _manifest(tmp_path: Path, workers: int) -> Path:
    remote = tmp_path / "remote"
    make_tree(remote / "objects" / "toys" / "v1", {f"f{i}.txt": 10 + i for i in range(3)})
    path = tmp_path / "dc.yaml"
    path.write_text(
        "apiVersion: dscache.io/v1alpha1\n"
        "kind: DatasetCache\n"
        "metadata: {name: team, namespace: ml}\n"
        "spec:\n"
        f"  source: {{file: {{path: {remote}}}}}\n"
        "  layout: Files\n"
        "  versions: [{dataType: objects, source: toys, version: v1}]\n"
        f"  install: {{workers: {workers}}}\n"
    )
    return path


NOTE = (
    "dscache: spec.install.workers: 3 is the cluster's installer Job of 3 pods; this process installs "
    "every item (to split the install over 3 processes, run each with --workers 3 --worker-index I, "
    "I = 0..2)"
)


def test_spec_workers_on_a_laptop_says_what_it_means_here(tmp_path: Path) -> None:
    result = run("install", "-f", str(_manifest(tmp_path, 3)), "--cache", str(tmp_path / "c"))
    assert result.code == 0, result
    assert NOTE in result.err.splitlines(), result.err
    assert (tmp_path / "c" / "objects" / "toys" / "v1" / "f2.txt").is_file()


def test_no_note_with_one_worker_or_quiet(tmp_path: Path) -> None:
    one = run("install", "-f", str(_manifest(tmp_path / "a", 1)), "--cache", str(tmp_path / "a" / "c"))
    assert one.code == 0, one
    assert "spec.install.workers" not in one.err
    manifest = _manifest(tmp_path / "b", 3)
    quiet = run("install", "-q", "-f", str(manifest), "--cache", str(tmp_path / "b" / "c"))
    assert quiet.code == 0, quiet
    assert quiet.err == ""


def test_the_published_line_says_its_time_is_the_commit() -> None:
    out = io.StringIO()
    fields = {"version": "objects/big=v1", "files": 410, "bytes": 152196749, "seconds": 0.021}
    PlainSink(out, every=0).emit("version_published", fields)
    assert out.getvalue() == "dscache: published objects/big=v1: 410 files, 145.1 MiB (commit 0.0s)\n"


def test_dry_run_names_the_unrecorded_bytes_of_the_partial_files_it_resumes() -> None:
    """After a kill -9: 3 files finished (300 MiB), two resumable partial files of 100 MiB (all 100
    recorded) and 78 MiB (16 recorded), and two without a resume record (10 MiB and empty). 72 MiB
    are not reused: 10 MiB of the unrecorded files, 62 MiB written past the recorded parts."""
    mib = 1 << 20
    staged = Tally(
        bytes=488 * mib,
        items=3,
        item_bytes=300 * mib,
        partial=4,
        partial_bytes=188 * mib,
        resumable=2,
        resumable_bytes=178 * mib,
    )
    fetch = VersionFetch(
        VersionKey("models", "raw", "v1"),
        published=False,
        items=408,
        bytes=645 * mib,
        items_staged=3,
        bytes_staged=416 * mib,
        partial_files=2,
        bytes_resumed=116 * mib,
        in_staging=staged,
    )
    assert _not_reused(fetch) == (
        " (488.0 MiB of file content in staging, as `dscache status` counts it, archives at their "
        "extracted size: 72.0 MiB of it is not reused: 2 partial file(s) without a resume record or of "
        "another object, 62.0 MiB of the files it resumes past their parts recorded as finished)"
    )


def test_install_help_says_each_job_has_a_stream_of_its_own() -> None:
    """DSCACHE_STREAMS=1 with the default 4 jobs read 4 objects at once: the help says why."""
    result = run("install", "--help")
    assert result.code == 0
    text = " ".join(result.out.split())
    assert (
        "DSCACHE_STREAMS streams an install reads large objects over, all jobs together (at least one per "
        "job), a count (default 32)"
    ) in text


def test_ctrl_c_during_an_install_says_a_rerun_resumes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(dscache.cli.install, "run", interrupted)
    result = run(
        "install", "--cache", str(tmp_path / "c"), "--source", "file:///r", "--version", "objects/a=v1"
    )
    assert (result.code, result.err) == (
        130,
        "dscache: error: interrupted: what it finished stays in staging; run the same install again to "
        "resume it\n",
    )
    dry = run(
        "install",
        "--cache",
        str(tmp_path / "c"),
        "--source",
        "file:///r",
        "--version",
        "objects/a=v1",
        "--dry-run",
    )
    assert (dry.code, dry.err) == (130, "dscache: error: interrupted\n")  # a dry run left nothing to resume
    monkeypatch.setattr(dscache.cli.gc, "run", interrupted)
    assert run("gc", "--cache", str(tmp_path / "c"), "--keep", "1").err == "dscache: error: interrupted\n"


def test_ls_remote_of_a_web_server_says_what_to_list_instead() -> None:
    result = run("ls-remote", "http://127.0.0.1:9/remote")
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "dscache: error: http://127.0.0.1:9/remote: plain HTTP cannot list files (a web server gives no "
        "listing): list the remote the versions were published to (an s3://, gs://, az://, hf:// or file:// "
        "URL), or install a version by its name: dscache install --cache DIR --source "
        "http://127.0.0.1:9/remote --version DT/SRC=VER\n"
    )
