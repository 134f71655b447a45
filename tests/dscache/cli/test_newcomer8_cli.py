"""What a platform engineer new to dscache ran into on a laptop (round 8): `spec.install.workers` in
a file installed with `-f` silently meaning nothing here, and the plain `published` line giving the
commit's time as if it were the version's."""

from __future__ import annotations

import io
from pathlib import Path

from dscache.cli.render import PlainSink
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
    quiet = run("install", "-q", "-f", str(_manifest(tmp_path / "b", 3)), "--cache", str(tmp_path / "b" / "c"))
    assert quiet.code == 0, quiet
    assert quiet.err == ""


def test_the_published_line_says_its_time_is_the_commit() -> None:
    out = io.StringIO()
    fields = {"version": "objects/big=v1", "files": 410, "bytes": 152196749, "seconds": 0.021}
    PlainSink(out, every=0).emit("version_published", fields)
    assert out.getvalue() == "dscache: published objects/big=v1: 410 files, 145.1 MiB (commit 0.0s)\n"
