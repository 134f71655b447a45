"""A remote's `dscache-manifest.json` that is not what publish writes reads as the same one line, naming
the file and the field, in every command that reads it: an install of the version stops with it (exit
1, nothing installed); where the manifest only informs (publish replacing the version, its check of
the manifests in place before removing anything, the comparison of a present version with the
remote in install and `ls-remote --cache`) the command says it as a warning and goes on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.layouts.manifest import DSCACHE_MANIFEST, DscacheManifest
from dscache.publish.stale import remove_stale
from dscache.publish.upload import PublishOptions, publish
from dscache.remotes.file import FileRemote
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import run
from tests.factories import TreeSpec, dataset_snapshot, make_tree, tree_snapshot

KEY = VersionKey("objects", "w", "v1")
TREE: TreeSpec = {"a/one.txt": 3000, "b/two.txt": 3000}
OPTIONS = PublishOptions(archive_size=4 << 10, threads=1)


def _size_big(doc: dict[str, object]) -> None:
    doc["archives"]["a_0000.tar.zst"]["size"] = "big"  # type: ignore[index]


def _sha_short(doc: dict[str, object]) -> None:
    doc["archives"]["b_0001.tar.zst"]["sha256"] = "abc123"  # type: ignore[index]


def _archives_list(doc: dict[str, object]) -> None:
    doc["archives"] = []


def _files_missing(doc: dict[str, object]) -> None:
    del doc["files"]


BROKEN = {
    "not-json": (b'{"archives": ', "not valid JSON (Expecting value: line 1 column 14 (char 13))"),
    "size": (_size_big, 'archives["a_0000.tar.zst"].size is "big", expected a whole number of bytes'),
    "sha256": (_sha_short, 'archives["b_0001.tar.zst"].sha256 is "abc123", expected 64 hex digits'),
    "archives": (_archives_list, "archives is [], expected an object"),
    "files": (_files_missing, "files is missing (expected a whole number)"),
    "nested": (b"[" * 100_000, "not valid JSON (nested too deeply)"),
}


def _published(tmp_path: Path) -> tuple[Path, str]:
    """The remote root with KEY published, and its URL."""
    root = tmp_path / "remote"
    publish(make_tree(tmp_path / "tree", TREE), FileRemote(root), KEY, OPTIONS)
    return root, f"file://{root}"


def _break(root: Path, url: str, how: str) -> str:
    """Spoil KEY's dscache manifest as BROKEN[how] says; the line every command shows for it."""
    path = root / KEY.rel / DSCACHE_MANIFEST
    change, said = BROKEN[how]
    if isinstance(change, bytes):
        path.write_bytes(change)
    else:
        doc = json.loads(path.read_bytes())
        change(doc)
        path.write_text(json.dumps(doc))
    return f"{url}/{KEY.rel}/{DSCACHE_MANIFEST}: {said}"


def _install(cache: Path, url: str, *more: str) -> list[str]:
    return ["install", *more, "--cache", str(cache), "--source", url, "--version", str(KEY)]


@pytest.mark.parametrize("how", BROKEN)
def test_an_install_stops_with_the_line(tmp_path: Path, how: str) -> None:
    root, url = _published(tmp_path)
    line = _break(root, url, how)
    cache = tmp_path / "cache"
    result = run(*_install(cache, url))
    assert (result.code, result.err.splitlines()) == (1, [f"dscache: error: {KEY}: {line}"])
    assert not CachePaths(cache).version_dir(KEY).exists()
    dry = run(*_install(cache, url, "--dry-run"))
    assert (dry.code, dry.err.splitlines()) == (1, [f"dscache: error: {KEY}: {line}"])


@pytest.mark.parametrize("how", BROKEN)
def test_a_present_version_is_kept_and_the_line_said_by_install_and_ls_remote(
    tmp_path: Path, how: str
) -> None:
    root, url = _published(tmp_path)
    cache = tmp_path / "cache"
    assert run(*_install(cache, url, "-q")).code == 0
    line = _break(root, url, how)
    install = run(*_install(cache, url, "-q"))
    assert (install.code, install.err.splitlines()) == (0, [f"dscache: warning: {line}"])
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(tmp_path / "tree")
    listed = run("ls-remote", url, "--cache", str(cache), "--json")
    assert (listed.code, listed.err.splitlines()) == (0, [f"dscache: warning: {line}"])
    assert [v["installed"] for v in json.loads(listed.out)["versions"]] == [True]


@pytest.mark.parametrize("how", BROKEN)
def test_publish_over_it_says_the_line_and_replaces_it(tmp_path: Path, how: str) -> None:
    root, url = _published(tmp_path)
    line = _break(root, url, how)
    new = make_tree(tmp_path / "new", {"a/one.txt": 5000})
    result = run("publish", str(new), "--to", url, "--version", str(KEY), "--overwrite", "-q")
    assert (result.code, result.err.splitlines()) == (0, [f"dscache: warning: {line}"])
    manifest = DscacheManifest.loads((root / KEY.rel / DSCACHE_MANIFEST).read_bytes())
    assert sorted(p.name for p in (root / KEY.rel).glob("*.tar.zst")) == sorted(manifest.archives)
    assert (manifest.files, manifest.bytes) == (1, 5000)


@pytest.mark.parametrize("how", BROKEN)
def test_the_check_before_removing_says_the_line_and_removes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """Another publish left a manifest publish does not write right before this one removes what it
    replaced: nothing is removed, and the warning is the same line."""
    root, url = _published(tmp_path)
    line = _break(root, url, how)
    before = sorted(p.name for p in (root / KEY.rel).iterdir())
    logged: list[str] = []
    with caplog.at_level(logging.WARNING, logger="dscache"):
        removal = remove_stale(FileRemote(root), KEY.rel, set(), logged.append, {"a_0000.tar.zst"})
    assert removal.removed == []
    assert [r.getMessage() for r in caplog.records] == [line]
    assert logged == [f"not removing anything from {url}/{KEY.rel}: its manifests cannot be read"]
    assert sorted(p.name for p in (root / KEY.rel).iterdir()) == before
