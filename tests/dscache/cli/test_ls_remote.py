"""`dscache ls-remote`: the versions a remote holds, with sizes and whether a cache has them, against
S3 (moto over HTTP), the Hugging Face test Hub (branches and tags as versions), GCS and Azure (their
emulators) and a local directory; bad input is one line and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dscache.api.names import VersionKey
from tests.dscache.cli.cli_helpers import assert_one_clean_line, run
from tests.factories import make_tree, publish_archives
from tests.servers.azure import ACCOUNT, AzureEnv
from tests.servers.gcs import GcsEnv
from tests.servers.hub import FakeHub
from tests.servers.s3 import S3Env

MOLMO = b'{"a.tar.zst": 0.001}'  # 20 bytes: the archives layout's per-version manifest
# An archives version with two versions of one source, a source with an inner '/', a files version
# with a nested file, another files version, and a README that belongs to no version.
REMOTE = {
    "objects/thor/v1/mjthor_resource_file_to_size_mb.json": MOLMO,
    "objects/thor/v1/a.tar.zst": bytes(1000),
    "objects/thor/v2/mjthor_resource_file_to_size_mb.json": MOLMO,
    "objects/thor/v2/a.tar.zst": bytes(3000),
    "objects/thor/v2/b.tar.zst": bytes(500),
    "objects/objaverse/part1/v7/mjthor_resource_file_to_size_mb.json": MOLMO,
    "objects/objaverse/part1/v7/c.tar.zst": bytes(64),
    "models/bert/v1/config.json": b"{}",
    "models/bert/v1/weights/w.bin": bytes(4096),
    "models/bert/v2/config.json": b'{"v": 2}',
    "README.md": b"# mirror\n",
}


def _row(dt: str, src: str, ver: str, layout: str, files: int, size: int, **more: Any) -> dict[str, Any]:
    row = {"dataType": dt, "source": src, "version": ver, "layout": layout, "files": files, "bytes": size}
    return {**row, **more}


EXPECTED = [
    _row("models", "bert", "v1", "Files", 2, 4098),
    _row("models", "bert", "v2", "Files", 1, 8),
    _row("objects", "objaverse/part1", "v7", "Archives", 2, 84),
    _row("objects", "thor", "v1", "Archives", 2, 1020),
    _row("objects", "thor", "v2", "Archives", 3, 3520),
]


def _listed(*args: str) -> dict[str, Any]:
    result = run("ls-remote", *args, "--json")
    assert result.code == 0, result.err
    listed: dict[str, Any] = json.loads(result.out)
    return listed


@pytest.fixture
def s3_mirror(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    for key, data in REMOTE.items():
        s3.put(f"mirror/{key}", data)
    return f"s3://{s3.bucket}/mirror"


def test_s3_versions_of_both_layouts_with_sizes_and_what_the_cache_holds(
    s3_mirror: str, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    installed = run("install", "--cache", str(cache), "--source", s3_mirror, "--layout", "files",
                    "--version", "models/bert=v1")  # fmt: skip
    assert installed.code == 0, installed.err
    listed = _listed(s3_mirror, "--cache", str(cache))
    assert listed["remote"] == s3_mirror
    flags = [True, False, False, False, False]
    assert listed["versions"] == [{**r, "installed": f} for r, f in zip(EXPECTED, flags, strict=True)]
    assert _listed(s3_mirror)["versions"] == EXPECTED  # without --cache, nothing is said about one


def test_s3_listing_under_a_data_type_or_source_and_by_layout(s3_mirror: str) -> None:
    assert _listed(s3_mirror, "objects")["versions"] == EXPECTED[2:]
    assert _listed(s3_mirror, "objects/thor")["versions"] == EXPECTED[3:]
    assert _listed(s3_mirror, "objects/objaverse")["versions"] == [EXPECTED[2]]  # sources below it
    assert _listed(s3_mirror, "--layout", "files")["versions"][:2] == EXPECTED[:2]
    assert _listed(s3_mirror, "--layout", "archives")["versions"] == EXPECTED[2:]
    assert _listed(s3_mirror, "nothing")["versions"] == []


def test_the_table_names_each_version_with_a_readable_size(s3_mirror: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    result = run("ls-remote", s3_mirror, "objects/thor", "--cache", str(cache))
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "DATA TYPE  SOURCE  VERSION  LAYOUT    FILES  SIZE     INSTALLED",
        "objects    thor    v1       Archives  2      1020 B   no",
        "objects    thor    v2       Archives  3      3.4 KiB  no",
    ]
    empty = run("ls-remote", s3_mirror, "nothing")
    assert (empty.code, empty.out) == (0, f"no versions under {s3_mirror}/nothing\n")


def test_a_local_directory_as_a_path_or_a_file_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = VersionKey("objects", "toys", "v1")
    remote = tmp_path / "remote"
    publish_archives(make_tree(tmp_path / "tree", {"a/x.txt": 3000, "b.bin": 20_000}), remote, key, 4096)
    stored = [p for p in (remote / key.rel).rglob("*") if p.is_file()]
    cache = tmp_path / "cache"
    assert (
        run("install", "--cache", str(cache), "--source", f"file://{remote}", "--version", str(key)).code == 0
    )
    expected = [_row("objects", "toys", "v1", "Archives", len(stored), sum(p.stat().st_size for p in stored))]
    assert _listed(f"file://{remote}")["versions"] == expected
    monkeypatch.chdir(tmp_path)  # a relative path, as a user types it
    listed = _listed("remote", "--cache", "cache")
    assert listed["remote"] == f"file://{remote}"
    assert listed["versions"] == [{**expected[0], "installed": True}]


@pytest.fixture
def bert(hub: FakeHub) -> dict[str, str]:
    """A model repo: tag v1, then tag v2 one commit later, which is also main's head. Every commit
    also holds the .gitattributes the Hub creates a repo with (42 bytes)."""
    hub.commit("org/bert", {"config.json": b'{"v": 1}', "model.bin": bytes(70_000)}, repo_type="model")
    first = hub.tag("org/bert", "v1", repo_type="model")
    hub.commit("org/bert", {"config.json": b'{"v": 22}'}, repo_type="model")
    second = hub.tag("org/bert", "v2", repo_type="model")
    return {"v1": first, "v2": second}


def _manifest(tmp_path: Path, hub: FakeHub, version: str) -> Path:
    path = tmp_path / "dc.yaml"
    hf = f'repo: org/bert, repoType: Model, revisionFromVersion: true, endpoint: "{hub.endpoint}"'
    path.write_text(
        "apiVersion: dscache.io/v1alpha1\nkind: DatasetCache\nmetadata: {name: bert}\n"
        f"spec:\n  source: {{huggingFace: {{{hf}}}}}\n  layout: Files\n"
        f"  versions: [{{dataType: models, source: bert, version: {version}}}]\n"
    )
    return path


def test_hf_revisions_are_the_branches_and_tags_with_their_commits(
    tmp_path: Path, hub: FakeHub, bert: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    manifest = _manifest(tmp_path, hub, "v1")
    assert run("install", "-f", str(manifest), "--cache", str(cache)).code == 0
    revisions = [
        _row("models", "bert", "main", "Files", 3, 70_051, revision=bert["v2"], refType="branch"),
        _row("models", "bert", "v1", "Files", 3, 70_050, revision=bert["v1"], refType="tag"),
        _row("models", "bert", "v2", "Files", 3, 70_051, revision=bert["v2"], refType="tag"),
    ]
    installed = [
        {"installed": False},
        {"installed": True, "installedRevision": bert["v1"]},
        {"installed": False},
    ]
    expected = [{**r, **i} for r, i in zip(revisions, installed, strict=True)]
    assert _listed("-f", str(manifest), "--cache", str(cache))["versions"] == expected
    assert hub.log.find("/api/models/org/bert/refs", method="GET")

    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    assert _listed("--revisions", "hf://models/org/bert", "models/bert")["versions"] == revisions
    unassigned = _listed("hf://models/org/bert", "--revisions")["versions"]
    assert [(r["dataType"], r["source"], r["version"]) for r in unassigned] == [
        (None, None, "main"),
        (None, None, "v1"),
        (None, None, "v2"),
    ]
    table = run("ls-remote", "-f", str(manifest), "--cache", str(cache)).out.splitlines()
    row = ["models", "bert", "v1", "Files", "3", "68.4", "KiB", bert["v1"][:12], "(tag)", "yes"]
    assert table[2].split() == row


@pytest.mark.parametrize("store", ["gcs", "azure"])
def test_gcs_and_azure_through_their_emulators(
    store: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    env: GcsEnv | AzureEnv = request.getfixturevalue(store)
    for key, data in REMOTE.items():
        env.put(f"mirror/{key}", data)
    if isinstance(env, GcsEnv):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", env.endpoint)
        url = f"gs://{env.bucket}/mirror"
    else:
        monkeypatch.delenv("AZURE_STORAGE_KEY")
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", env.server.connection_string())
        url = f"az://{ACCOUNT}/{env.container}/mirror"
    listed = _listed(url)
    assert (listed["remote"], listed["versions"]) == (url, EXPECTED)


def test_bad_input_is_one_line_and_a_non_zero_exit(
    tmp_path: Path, s3: S3Env, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    not_a_cache = tmp_path / "file.txt"
    not_a_cache.write_text("x")
    assert_one_clean_line(run("ls-remote"), 2, "give SOURCE [DT[/SRC]]")
    assert_one_clean_line(run("ls-remote", "ftp://host/x"), 2, "SOURCE 'ftp://host/x'", "scheme")
    assert_one_clean_line(
        run("ls-remote", str(tmp_path / "missing")), 2, "not a URL", "nor an existing directory"
    )
    assert_one_clean_line(run("ls-remote", f"file://{tmp_path}", "bad name!"), 2, "data type 'bad name!'")
    assert_one_clean_line(run("ls-remote", f"file://{tmp_path}", "a/b", "c"), 2, "give SOURCE [DT[/SRC]]")
    assert_one_clean_line(run("ls-remote", f"s3://{s3.bucket}", "--revisions"), 2, "only a hf:// source")
    assert_one_clean_line(
        run("ls-remote", f"file://{tmp_path}", "--cache", str(not_a_cache)), 2, "--cache", str(not_a_cache)
    )
    assert_one_clean_line(run("ls-remote", "https://127.0.0.1:9/base"), 1, "plain HTTP cannot list files")
    assert_one_clean_line(run("ls-remote", "s3://no-such-bucket-here/x"), 1, "no-such-bucket-here")
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    missing = run("ls-remote", "--revisions", "hf://models/org/missing")
    assert_one_clean_line(missing, 1, "hf://models/org/missing", "repository not found")
    manifest = tmp_path / "dc.yaml"
    manifest.write_text("kind: ConfigMap\n")
    assert_one_clean_line(run("ls-remote", "-f", str(manifest)), 2, str(manifest), "no document with kind")
    assert_one_clean_line(run("ls-remote", "-f", str(manifest), "s3://b", "objects"), 2, "with -f")


def test_a_files_source_with_an_inner_slash_is_cut_where_it_is_named(tmp_path: Path) -> None:
    remote = make_tree(tmp_path / "remote", {"data/team/set/v3/x.bin": 10, "data/team/set/v3/y/z.bin": 5})
    named = _listed(str(remote), "data/team/set")["versions"]
    assert named == [_row("data", "team/set", "v3", "Files", 2, 15)]
    # Unnamed, a files path is <dt>/<src>/<ver>/...: the listing cannot tell an inner '/' apart.
    assert _listed(str(remote))["versions"] == [_row("data", "team", "set", "Files", 2, 15)]


def test_a_branch_that_moved_since_its_install_shows_the_installed_commit(
    tmp_path: Path, hub: FakeHub, bert: dict[str, str]
) -> None:
    cache = tmp_path / "cache"
    assert run("install", "-f", str(_manifest(tmp_path, hub, "main")), "--cache", str(cache)).code == 0
    moved = hub.commit("org/bert", {"config.json": b'{"v": 333}'}, repo_type="model")
    listed = _listed("-f", str(tmp_path / "dc.yaml"), "--cache", str(cache))["versions"]
    main = listed[0]
    assert (main["version"], main["revision"], main["installedRevision"]) == ("main", moved, bert["v2"])
    table = run("ls-remote", "-f", str(tmp_path / "dc.yaml"), "--cache", str(cache)).out.splitlines()
    assert table[1].endswith(f"{moved[:12]} (branch)  yes, at {bert['v2'][:12]}")
