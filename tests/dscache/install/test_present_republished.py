"""A version present in the cache whose remote was republished since (`publish --overwrite`) is kept
(presence is by key), but the install says it in one warning line naming the version and the ways
out, and `ls-remote --cache` shows it as installed but differing from the remote."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.install.provenance import differs_from_stated
from dscache.publish.upload import PublishOptions, publish
from dscache.remotes.file import FileRemote
from dscache.remotes.s3 import S3Remote
from dscache.store.paths import CachePaths
from dscache.store.records import ArchiveRecord, CompleteRecord
from tests.factories import TreeSpec, dataset_snapshot, make_tree, tree_snapshot
from tests.servers.s3 import S3Env

KEY = VersionKey("objects", "w", "v1")
OLD: TreeSpec = {"a/one.txt": 3000, "b/two.txt": 3000}
NEW: TreeSpec = {"a/one.txt": 5000, "b/two.txt": 2000}
OPTIONS = PublishOptions(archive_size=4 << 10, threads=1)
OVERWRITE = replace(OPTIONS, overwrite=True)


def _install(cache: Path, url: str) -> int:
    return main(["install", "-q", "--cache", str(cache), "--source", url, "--version", str(KEY)])


def _installed_cell(cache: Path, url: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, bool]:
    """The INSTALLED cell of the version's row in `ls-remote --cache`, and its JSON's installedDiffers."""
    assert main(["ls-remote", url, "--cache", str(cache)]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    cell = row[header.index("INSTALLED") :].strip()
    assert main(["ls-remote", url, "--cache", str(cache), "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["versions"]
    return cell, bool(listed.get("installedDiffers"))


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_an_install_finding_a_republished_version_present_keeps_it_and_says_so(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    kind: str,
) -> None:
    if kind == "s3":
        s3: S3Env = request.getfixturevalue("s3")
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
        url = f"s3://{s3.bucket}/mirror"
        remote: FileRemote | S3Remote = S3Remote(s3.bucket, "mirror", endpoint=s3.endpoint)
    else:
        url = f"file://{tmp_path / 'remote'}"
        remote = FileRemote(tmp_path / "remote")
    old, new = make_tree(tmp_path / "old", OLD), make_tree(tmp_path / "new", NEW)
    publish(old, remote, KEY, OPTIONS)
    cache = tmp_path / "cache"
    assert _install(cache, url) == 0
    capsys.readouterr()
    assert _installed_cell(cache, url, capsys) == ("yes", False)

    publish(old, remote, KEY, OVERWRITE)  # the same bytes again: nothing to say
    assert _install(cache, url) == 0
    assert capsys.readouterr().err == ""

    publish(new, remote, KEY, OVERWRITE)
    assert _install(cache, url) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"dscache: warning: {KEY} differs from the version {url} now holds (republished there after this "
        "cache installed it): kept as it is (a published version never changes); to get the remote's, "
        f"remove it (dscache release --cache {cache} --ref default removes it and the versions only that "
        "ref names) and install again, or have it published under a new version name"
    ]
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(old)  # kept
    assert _installed_cell(cache, url, capsys) == ("yes (differs from remote)", True)
    dry = ["install", "--dry-run", "--cache", str(cache), "--source", url, "--version", str(KEY)]
    assert main(dry) == 0
    assert (
        f"    the install would warn: {KEY} differs from the version {url} now holds"
        in capsys.readouterr().out
    )

    # the way out the warning names works
    assert main(["release", "-q", "--cache", str(cache), "--ref", "default"]) == 0
    assert _install(cache, url) == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(new)
    capsys.readouterr()
    assert _installed_cell(cache, url, capsys) == ("yes", False)


@pytest.mark.parametrize("also_missing", [True, False], ids=["one-missing", "all-present"])
def test_a_team_worker_says_it_once_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], also_missing: bool
) -> None:
    remote, url = FileRemote(tmp_path / "remote"), f"file://{tmp_path / 'remote'}"
    other = VersionKey("objects", "x", "v1")
    publish(make_tree(tmp_path / "old", OLD), remote, KEY, OPTIONS)
    publish(make_tree(tmp_path / "old", OLD), remote, other, OPTIONS)
    cache = tmp_path / "cache"
    assert _install(cache, url) == 0
    publish(make_tree(tmp_path / "new", NEW), remote, KEY, OVERWRITE)
    capsys.readouterr()
    versions = [str(KEY), "--version", str(other)] if also_missing else [str(KEY)]
    team = ["--workers", "2", "--worker-index", "0"]
    argv = ["install", "-q", "--cache", str(cache), "--source", url, "--version", *versions, *team]
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"dscache: warning: {KEY} differs from the version {url}"), err


def test_an_unreachable_remote_does_not_fail_an_install_of_present_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, s3: S3Env
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    url = f"s3://{s3.bucket}/mirror"
    publish(
        make_tree(tmp_path / "old", OLD), S3Remote(s3.bucket, "mirror", endpoint=s3.endpoint), KEY, OPTIONS
    )
    cache = tmp_path / "cache"
    assert _install(cache, url) == 0
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    # the same remote (URL) now behind an endpoint nobody listens on: the check is skipped, unsaid
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    capsys.readouterr()
    assert _install(cache, url) == 0
    assert capsys.readouterr().err == ""


def _record(**archives: ArchiveRecord) -> CompleteRecord:
    return CompleteRecord("objects", "w", "v1", "file:///r", "archives", 2, 10, archives=archives)


def test_what_counts_as_differing() -> None:
    record = _record(**{"a_0000.tar.zst": ArchiveRecord(10, "AB" * 32)})
    assert not differs_from_stated(record, {"a_0000.tar.zst": (10, "ab" * 32)})
    assert not differs_from_stated(record, {"a_0000.tar.zst": (None, None)})  # nothing stated to compare
    assert differs_from_stated(record, {"a_0000.tar.zst": (10, "cd" * 32)})
    assert differs_from_stated(record, {"a_0000.tar.zst": (11, None)})
    assert differs_from_stated(record, {"a-abababababab_0000.tar.zst": (10, "ab" * 32)})
