"""Every data-plane failure line names the version (dataType/source=version) and the item (archive,
member or file) it happened in, and its hint fits the cause: a retry only where a retry can help;
where the remote's bytes differ from what it states, that the remote's content must be fixed.

Each case runs the real CLI against a real remote (a local directory, the HTTP file server with
faults, moto's S3 over HTTP) and checks the one line it prints, its exit code, and that nothing of
the version was published."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.errors import DscacheError
from dscache.install.failures import item_failure
from dscache.install.ingest import UnsettledError
from dscache.layouts.plan import WorkItem
from dscache.remotes.base import UnpinnedResumeError
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import Result, run
from tests.dscache.install.test_zstd_window import long_window
from tests.factories import (
    _info,
    content_for,
    corrupt_archive,
    make_tree,
    malicious_archive,
    publish_archives,
    publish_raw_archives,
    tar_zst,
)
from tests.servers.files import FileServer
from tests.servers.s3 import S3Env

KEY = VersionKey("objects", "thor", "v1")
REBUILD = (
    "the archive as published holds a member dscache never extracts, and nothing of the version was "
    "installed: rebuild the archive (dscache publish packs only files, directories and symlinks inside "
    "the tree) and publish the version again"
)
DAMAGED = (
    "the archive on the remote is damaged or is not the one the version's dscache-manifest.json "
    "describes, and another download gets the same bytes: publish the version again (dscache publish), "
    "then install again"
)
DIFFERS = (
    "the remote serves other bytes than the version's dscache-manifest.json states for them, and a retry "
    "gets the same bytes: publish the version again (dscache publish) or correct its dscache-manifest.json"
)


def _install(cache: Path, source: str, *, layout: str = "Archives") -> Result:
    return run(
        "install", "--cache", str(cache), "--source", source, "--layout", layout, "--version", str(KEY)
    )


def _error(result: Result, cache: Path) -> str:
    """The one error line (the last line; before it only the "installing" line), exit 1, no traceback,
    no "try again later"; the version not published."""
    assert result.code == 1, result
    assert "Traceback" not in result.out + result.err, result.err
    errors = [line for line in result.lines if line.startswith("dscache: error: ")]
    assert errors == result.lines[-1:], result.lines
    assert "try again later" not in result.err
    assert not CachePaths(cache).version_dir(KEY).exists()
    return errors[0].removeprefix("dscache: error: ")


def _refused(result: Result, cache: Path, line: str) -> None:
    assert _error(result, cache) == line


def _says(result: Result, cache: Path, *parts: str) -> None:
    """The error line starts with the first of `parts` and holds the others in order."""
    line = _error(result, cache)
    assert line.startswith(parts[0]), line
    at = 0
    for part in parts[1:]:
        at = line.index(part, at) + len(part)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated", "truncated: the zstd stream ends inside a frame, after "),
        ("garbage", "corrupt zstd data: "),
        ("flipped", "corrupt zstd data: "),
    ],
)
def test_an_archive_corrupt_as_published_names_version_and_archive_and_says_to_publish_again(
    tmp_path: Path, kind: str, reason: str
) -> None:
    publish_raw_archives(tmp_path / "remote", KEY, {"bad.tar.zst": corrupt_archive(kind)})
    result = _install(tmp_path / "cache", f"file://{tmp_path / 'remote'}")
    _says(result, tmp_path / "cache", f"{KEY}: archive bad.tar.zst: {reason}", f"; {DAMAGED}")


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("dotdot", "path contains '..'"),
        ("char_device", "device, fifo or socket not allowed"),
        ("hardlink_dotdot", "hardlink to '../victim' escapes the version directory"),
        ("symlink_relative", "symlink '../../../../escape' escapes the version directory"),
    ],
)
def test_an_unsafe_member_names_version_member_and_archive_and_says_to_rebuild_it(
    tmp_path: Path, kind: str, reason: str
) -> None:
    hostile = malicious_archive(kind, tmp_path / "outside")
    publish_raw_archives(tmp_path / "remote", KEY, {"evil.tar.zst": hostile.data})
    result = _install(tmp_path / "cache", f"file://{tmp_path / 'remote'}")
    _refused(
        result,
        tmp_path / "cache",
        f"{KEY}: member {hostile.member!r} of archive evil.tar.zst: {reason}; {REBUILD}",
    )


def test_archives_that_cannot_make_one_version_are_named_with_the_version(tmp_path: Path) -> None:
    """Found when the version is assembled, after both archives were extracted."""
    a = tar_zst([(_info("x", tarfile.REGTYPE, size=2), b"x\n")])
    b = tar_zst([(_info("x", tarfile.DIRTYPE), None), (_info("x/y", tarfile.REGTYPE, size=2), b"y\n")])
    publish_raw_archives(tmp_path / "remote", KEY, {"a.tar.zst": a, "b.tar.zst": b})
    result = _install(tmp_path / "cache", f"file://{tmp_path / 'remote'}")
    _says(result, tmp_path / "cache", f"{KEY}: member 'x' of archive b.tar.zst: ", f"; {REBUILD}")


def _published(tmp_path: Path) -> Path:
    remote = tmp_path / "remote"
    publish_archives(
        make_tree(tmp_path / "tree", {"a/f1": 3000, "a/f2": 70_000}), remote, KEY, archive_size=1 << 20
    )
    return remote / KEY.rel


def _edit_manifest(version: Path, **entry: object) -> str:
    """Change the one archive's entry in dscache-manifest.json; its name."""
    path = version / "dscache-manifest.json"
    manifest = json.loads(path.read_text())
    (name,) = manifest["archives"]
    manifest["archives"][name].update(entry)
    path.write_text(json.dumps(manifest))
    return str(name)


def test_a_digest_other_than_the_manifest_states_says_the_remote_differs_not_try_again(
    tmp_path: Path,
) -> None:
    version = _published(tmp_path)
    real = json.loads((version / "dscache-manifest.json").read_text())
    name = _edit_manifest(version, sha256="0" * 64)
    actual = real["archives"][name]["sha256"]
    result = _install(tmp_path / "cache", f"file://{tmp_path / 'remote'}")
    _refused(
        result,
        tmp_path / "cache",
        f"{KEY}: archive {name}: sha256 {actual} does not match the published {'0' * 64} (on 2 downloads); "
        f"{DIFFERS}",
    )


def test_a_size_other_than_the_manifest_states_says_the_remote_holds_another_object(tmp_path: Path) -> None:
    version = _published(tmp_path)
    name = _edit_manifest(version, size=123)
    size = (version / name).stat().st_size
    result = _install(tmp_path / "cache", f"file://{tmp_path / 'remote'}")
    _refused(
        result,
        tmp_path / "cache",
        f"{KEY}: archive {name}: file://{version}/{name}: the remote object is not the one being downloaded "
        f"(size 123 -> {size}); it changed since it was listed or first read, or a manifest states another "
        "one (again after starting over); the remote holds another object than the version's "
        "dscache-manifest.json states, on every "
        "try: if the version is being published right now, install again once that is done; otherwise "
        "publish the version again (dscache publish) or correct its dscache-manifest.json",
    )


def test_an_archive_the_manifest_names_and_the_remote_lacks_says_so(tmp_path: Path) -> None:
    version = _published(tmp_path)
    (name,) = json.loads((version / "dscache-manifest.json").read_text())["archives"]
    (version / name).unlink()
    result = _install(tmp_path / "cache", f"file://{tmp_path / 'remote'}")
    _says(
        result,
        tmp_path / "cache",
        f"{KEY}: archive {name}: ",
        "; the remote does not hold a file the version's dscache-manifest.json names: publish the version "
        "again (dscache publish) or correct its dscache-manifest.json",
    )


def test_a_server_error_that_outlives_the_retries_says_to_install_again_later(
    tmp_path: Path, http_server: FileServer
) -> None:
    publish_archives(
        make_tree(tmp_path / "tree", {"a/f1": 3000}), http_server.root, KEY, archive_size=1 << 20
    )
    http_server.faults.status(503, times=None, path="*.tar.zst")
    result = _install(tmp_path / "cache", http_server.url)
    _says(
        result,
        tmp_path / "cache",
        f"{KEY}: archive ",
        "HTTP 503",
        "gave up after 5 attempt(s)",
        "; a network or server error that did not clear on retries: install again later (finished items "
        "are kept; DSCACHE_RETRY_* set the retry budget)",
    )


def test_a_zstd_window_above_the_bound_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_raw_archives(tmp_path / "remote", KEY, {"long.tar.zst": long_window(30)})
    monkeypatch.setenv("DSCACHE_ZSTD_MAX_WINDOW", "256Mi")
    result = _install(tmp_path / "cache", f"file://{tmp_path / 'remote'}")
    _refused(
        result,
        tmp_path / "cache",
        f"{KEY}: archive long.tar.zst: zstd window of 1.0 GiB (1073741824 bytes) is above the bound of "
        "256.0 MiB (DSCACHE_ZSTD_MAX_WINDOW, at most 2Gi); set DSCACHE_ZSTD_MAX_WINDOW (the memory one "
        "extraction may take) to a size between the window the archive needs and 2Gi, or publish the "
        "archive with a smaller window",
    )


def test_a_file_whose_bytes_differ_from_the_listed_digest_names_version_and_file(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    data = content_for("only", 50_000)
    s3.put(f"{KEY.rel}/sub/only.bin", data, checksum=None)
    s3.server.faults.corrupt(times=None, path="*only.bin")
    result = _install(tmp_path / "cache", f"s3://{s3.bucket}", layout="Files")
    _says(
        result,
        tmp_path / "cache",
        f"{KEY}: file sub/only.bin: md5 ",
        "does not match the remote ETag",
        "(on 2 downloads); the remote serves other bytes than the remote's listing states for them, and a "
        "retry gets the same bytes: upload the file again, or correct what the remote states for it",
    )


FILE = WorkItem(kind="file", name="sub/w.bin", remote_path="objects/thor/v1/sub/w.bin", size=10)


@pytest.mark.parametrize(
    ("err", "hint"),
    [
        (
            UnsettledError("sub/w.bin: md5 aa differs from the remote ETag bb (which may not be an MD5)"),
            "no two downloads gave the same bytes: the remote serves changing bytes under this name; "
            "install again later, or ask the remote's owner",
        ),
        (
            UnpinnedResumeError(
                "https://h/w.bin: the download was cut at byte 5 and the remote sends no ETag"
            ),
            "install again (the item starts over), or serve the file with an ETag or Last-Modified so a cut "
            "download can resume",
        ),
    ],
)
def test_failures_a_retry_can_cure_say_to_install_again(err: DscacheError, hint: str) -> None:
    """Causes the byte path meets on real networks only (a CDN that rewrites bodies, a proxy that strips
    validators), judged on the errors the transfer raises."""
    line = str(item_failure(KEY, FILE, err))
    assert line.startswith(f"{KEY}: file sub/w.bin: ")
    assert line.endswith(f"; {hint}")
    assert "sub/w.bin: sub/w.bin" not in line


@pytest.mark.parametrize("dry_run", [False, True], ids=["install", "dry-run"])
def test_a_gzip_archive_in_the_manifest_is_refused_naming_the_version(tmp_path: Path, dry_run: bool) -> None:
    """Only `.tar.zst` archives are installed; a manifest naming another kind fails while planning."""
    version = _published(tmp_path)
    (version / "mjthor_resource_file_to_size_mb.json").write_text(json.dumps({"a.tar.gz": 1.0}))
    result = run(
        "install",
        "--cache",
        str(tmp_path / "cache"),
        "--source",
        f"file://{tmp_path / 'remote'}",
        "--version",
        str(KEY),
        *(["--dry-run"] if dry_run else []),
    )
    _refused(
        result,
        tmp_path / "cache",
        f"{KEY}: file://{version}/mjthor_resource_file_to_size_mb.json: archive name 'a.tar.gz' is not a "
        "plain <name>.tar.zst",
    )


def test_a_manifest_the_server_keeps_failing_names_the_version_and_says_to_install_again_later(
    tmp_path: Path, http_server: FileServer
) -> None:
    publish_archives(
        make_tree(tmp_path / "tree", {"a/f1": 3000}), http_server.root, KEY, archive_size=1 << 20
    )
    http_server.faults.status(503, times=None, path="*.json")
    result = _install(tmp_path / "cache", http_server.url)
    _says(
        result,
        tmp_path / "cache",
        f"{KEY}: {http_server.url}/{KEY.rel}/",
        "HTTP 503",
        "gave up after 5 attempt(s)",
        "; a network or server error that did not clear on retries: install again later (finished items "
        "are kept; DSCACHE_RETRY_* set the retry budget)",
    )
