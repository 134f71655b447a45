"""`dscache publish` end to end through the real CLI and the real remotes (file://, S3, HF)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.layouts.manifest import DSCACHE_MANIFEST
from dscache.layouts.molmospaces import MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST
from dscache.layouts.published import PUBLISH_LEASE
from dscache.publish.hfshards import hf_config_name, hf_index_path
from tests.factories import Symlink, TreeSpec, make_tree, publish_archives
from tests.servers.hub import FakeHub

if TYPE_CHECKING:
    from tests.conftest import S3Env

KEY = VersionKey("objects", "thor", "v1")
TREE: TreeSpec = {
    "objects/a/model.xml": 5000,
    "objects/b/model.xml": 5000,
    "objects/b/link.xml": Symlink("model.xml"),
    "objects/c/mesh.obj": 20000,
}


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree", TREE)


def test_publish_to_a_file_remote_matches_the_library(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = tmp_path / "remote"
    argv = ["publish", str(tree), "--to", f"file://{remote}", "--version", str(KEY), "--archive-size", "8KiB"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files"] == 4 and out["archives"] >= 3
    assert out["uploaded"][-3:] == [
        f"{KEY.rel}/{n}" for n in (MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST, DSCACHE_MANIFEST)
    ]
    publish_archives(tree, tmp_path / "expected", KEY, archive_size=8 << 10)
    assert files_under(remote) == files_under(tmp_path / "expected")

    assert main(argv) == 1  # already published: never replaced silently
    assert "already published" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert "published objects/thor=v1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--version", "no-equals-sign"], "DATA_TYPE/SOURCE=VERSION"),
        (["--version", "objects/../etc=v1"], "not a safe name"),
        (["--version", str(KEY), "--archive-size", "lots"], "size 'lots'"),
        (["--version", str(KEY), "--to", "http://example.com/x"], "read-only"),
        (["--version", str(KEY), "--to", "ftp://example.com/x"], "scheme"),
    ],
)
def test_usage_errors_exit_2(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["publish", str(tree), "--to", f"file://{tmp_path}/remote", *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "remote").exists()


def test_a_tree_with_an_escaping_symlink_exits_2_naming_it(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "objects/c/evil").symlink_to("/etc/passwd")
    argv = ["publish", str(tree), "--to", f"file://{tmp_path}/remote", "--version", str(KEY)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "objects/c/evil" in err and "outside the tree" in err
    assert not list((tmp_path).glob("remote/**/*.tar.zst"))


def test_publish_to_s3_gives_the_same_objects_as_a_file_remote(
    tree: Path, tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    argv = [
        "publish",
        str(tree),
        "--to",
        f"s3://{s3.bucket}/mirror",
        "--version",
        str(KEY),
        "--archive-size",
        "8KiB",
    ]
    assert main(argv) == 0
    publish_archives(tree, tmp_path / "expected", KEY, archive_size=8 << 10)
    client = s3.server.client()
    listed = client.list_objects_v2(Bucket=s3.bucket, Prefix="mirror/")["Contents"]
    got = {
        o["Key"].removeprefix("mirror/"): client.get_object(Bucket=s3.bucket, Key=o["Key"])["Body"].read()
        for o in listed
    }
    assert got == files_under(tmp_path / "expected")
    puts = [r.path.rsplit("/", 1)[-1] for r in s3.server.log.find(method="PUT") if "/mirror/" in r.path]
    assert puts[0] == PUBLISH_LEASE  # taken first (and released: not in `got`)
    assert puts[-3:] == [MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST, DSCACHE_MANIFEST]
    assert sorted(puts[1:-3]) == sorted(n.rsplit("/", 1)[-1] for n in got if n.endswith(".tar.zst")) != []


def test_publish_hf_shards_to_the_hub_in_one_commit(
    tree: Path, tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.create_repo("org/assets")
    before = hub.head("org/assets")
    url = "hf://datasets/org/assets/mujoco"
    argv = ["publish", str(tree), "--to", url, "--version", str(KEY), "--archive-size", "8KiB", "--hf-shards"]
    assert main(argv) == 0
    publish_archives(tree, tmp_path / "expected", KEY, 8 << 10, hf_shards=True, hf_prefix="mujoco")
    expected = files_under(tmp_path / "expected")
    for path, data in expected.items():
        assert hub.read("org/assets", path) == data, path
    assert hf_index_path(hf_config_name("mujoco", KEY)) in expected
    assert hub.head("org/assets") != before
    assert len(hub.repo("org/assets").infos) == 2  # the initial commit and ONE publish commit
