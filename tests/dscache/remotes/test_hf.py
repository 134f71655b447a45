"""HfRemote through huggingface_hub against a fake Hub served over HTTP on 127.0.0.1: revisions,
tokens, LFS, pagination, commits. Reads, faults, Range answers and pinning are the conformance
suite's (test_conformance.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from dscache.api.manifest import source_from_url
from dscache.remotes.base import NotFoundError, Pin, RemoteError
from dscache.remotes.factory import open_remote
from dscache.remotes.hf import HfRemote
from tests.servers.hub import FakeHub

REPO = "allenai/molmo-test"
DATA = os.urandom(800_000)
ARCHIVE = "mujoco/objects/thor/v1/part-1.tar.zst"
TOKEN = "hf_TestTokenValue1234567890abcdef"


@pytest.fixture
def seeded(hub: FakeHub) -> FakeHub:
    hub.commit(REPO, {ARCHIVE: DATA, "mujoco/objects/thor/v1/sizes.json": b'{"part-1.tar.zst": 0.8}'})
    hub.tag(REPO, "v1.0")
    return hub


def test_branch_is_pinned_to_its_commit_for_every_read(seeded: FakeHub) -> None:
    remote = HfRemote(REPO, prefix="mujoco", revision="main", endpoint=seeded.endpoint)
    pinned = seeded.head(REPO)
    assert remote.resolve_revision() == pinned
    # The branch moves on; this install keeps reading the snapshot it pinned.
    seeded.commit(REPO, {"mujoco/objects/thor/v1/sizes.json": b"{}"})
    assert seeded.head(REPO) != pinned
    assert remote.read_bytes("objects/thor/v1/sizes.json") == b'{"part-1.tar.zst": 0.8}'
    assert [f.path for f in remote.list_files("objects")] == [
        "objects/thor/v1/part-1.tar.zst",
        "objects/thor/v1/sizes.json",
    ]
    data_requests = [r for r in seeded.log.all() if "/resolve/" in r.path or "/tree/" in r.path]
    assert data_requests and all(pinned in r.path for r in data_requests)
    assert len(seeded.log.find("/api/datasets/*/revision/*")) == 1  # resolved once


def test_tag_resolves_to_its_commit(seeded: FakeHub) -> None:
    tagged = seeded.head(REPO, "v1.0")
    seeded.commit(REPO, {"later.txt": b"later"})
    remote = HfRemote(REPO, prefix="mujoco", revision="v1.0", endpoint=seeded.endpoint)
    assert remote.resolve_revision() == tagged
    assert remote.commit == tagged


def test_reads_are_lazy_pinned_and_ranges_work(seeded: FakeHub) -> None:
    remote = HfRemote(REPO, endpoint=seeded.endpoint)
    assert remote.commit is None
    assert b"".join(remote.stream(ARCHIVE, 1000, 2000)) == DATA[1000:3000]
    assert remote.commit == seeded.head(REPO)
    cdn = seeded.log.find("/cdn/*")
    assert cdn and cdn[-1].range == "bytes=1000-2999"  # Range survives the LFS redirect


def test_hf_endpoint_and_hf_token_from_the_environment(
    seeded: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded.token = TOKEN
    monkeypatch.setenv("HF_ENDPOINT", seeded.endpoint)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    remote = open_remote(source_from_url(f"hf://datasets/{REPO}"))
    assert remote.read_bytes(ARCHIVE) == DATA
    hub_requests = [r for r in seeded.log.all() if not r.path.startswith("/cdn/")]
    assert hub_requests and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hub_requests)


def test_token_never_appears_in_errors(seeded: FakeHub) -> None:
    seeded.token = "hf_TheRightToken0000000000000000"
    remote = HfRemote(REPO, endpoint=seeded.endpoint, token=TOKEN)  # wrong token
    with pytest.raises(RemoteError) as err:
        remote.resolve_revision()
    assert TOKEN not in str(err.value) and "access denied" in str(err.value)

    good = HfRemote(REPO, endpoint=seeded.endpoint, token=seeded.token)
    seeded.faults.status(500, times=None, path="*/resolve/*")
    with pytest.raises(RemoteError) as err2:
        good.read_bytes(ARCHIVE)
    seeded.faults.clear()
    with pytest.raises(NotFoundError) as err3:
        good.read_bytes("missing.json")
    for e in (err2.value, err3.value):
        assert seeded.token not in str(e) and "hf_The" not in str(e)


def test_missing_repo_and_revision_are_clear_errors(seeded: FakeHub) -> None:
    with pytest.raises(RemoteError, match="repository not found"):
        HfRemote("nobody/nothing", endpoint=seeded.endpoint).resolve_revision()
    with pytest.raises(RemoteError, match="revision 'v9' not found"):
        HfRemote(REPO, revision="v9", endpoint=seeded.endpoint).resolve_revision()


def test_list_files_has_lfs_sha256_and_sizes_across_pages(seeded: FakeHub) -> None:
    seeded.page_size = 2  # force Link pagination
    seeded.commit(REPO, {f"mujoco/objects/thor/v1/extra-{i}.json": b"x" * i for i in range(5)})
    remote = HfRemote(REPO, prefix="mujoco", endpoint=seeded.endpoint)
    files = {f.path: f for f in remote.list_files("objects/thor/v1")}
    assert len(files) == 7
    archive = files["objects/thor/v1/part-1.tar.zst"]
    assert archive.size == len(DATA) and archive.sha256 == hashlib.sha256(DATA).hexdigest()
    assert (
        files["objects/thor/v1/extra-3.json"].size == 3
        and files["objects/thor/v1/extra-3.json"].sha256 is None
    )
    assert remote.list_files("objects/none") == []


def test_5xx_burst_on_resolve_and_repo_info_is_survived(seeded: FakeHub) -> None:
    seeded.faults.status(502, times=2, path="/api/datasets/*/revision/*")
    seeded.faults.status(503, times=2, path="*/resolve/*")
    remote = HfRemote(REPO, endpoint=seeded.endpoint)
    assert remote.read_bytes(ARCHIVE) == DATA


def test_non_lfs_files_are_served_directly(hub: FakeHub) -> None:
    hub.commit(REPO, {"README.md": b"# hi\n"})
    remote = HfRemote(REPO, endpoint=hub.endpoint)
    assert remote.read_bytes("README.md") == b"# hi\n"
    assert not hub.log.find("/cdn/*")


def test_model_repos(hub: FakeHub) -> None:
    hub.commit("org/model", {"weights/model.safetensors": b"w" * 100}, repo_type="model")
    remote = HfRemote("org/model", repo_type="model", endpoint=hub.endpoint)
    assert remote.read_bytes("weights/model.safetensors") == b"w" * 100
    assert hub.log.find("/org/model/resolve/*")


def test_put_files_makes_one_commit_and_reads_see_it(hub: FakeHub, tmp_path: Path) -> None:
    hub.create_repo(REPO)
    a, b = tmp_path / "a.tar.zst", tmp_path / "b.json"
    a.write_bytes(b"archive bytes")
    b.write_bytes(b"{}")
    remote = HfRemote(REPO, prefix="mujoco", endpoint=hub.endpoint, token=TOKEN)
    before = hub.head(REPO)
    commit = remote.put_files([("objects/thor/v2/a.tar.zst", a), ("objects/thor/v2/b.json", b)])
    assert commit == hub.head(REPO) != before
    assert len(hub.log.find("/api/datasets/*/commit/*", method="POST")) == 1
    assert hub.read(REPO, "mujoco/objects/thor/v2/a.tar.zst") == b"archive bytes"
    remote.put_file("objects/thor/v2/c.txt", b)
    assert remote.read_bytes("objects/thor/v2/c.txt") == b"{}"
    assert remote.commit == hub.head(REPO)


def test_a_commit_revision_is_checked_and_read_as_is(seeded: FakeHub) -> None:
    old = seeded.head(REPO)
    seeded.commit(REPO, {ARCHIVE: b"rewritten"})
    remote = HfRemote(REPO, revision=old, endpoint=seeded.endpoint)
    assert remote.read_bytes(ARCHIVE) == DATA
    with pytest.raises(RemoteError, match="not found"):
        HfRemote(REPO, revision="0" * 40, endpoint=seeded.endpoint).resolve_revision()


def test_listing_names_the_content_and_downloads_are_pinned_to_the_lfs_object(seeded: FakeHub) -> None:
    remote = HfRemote(REPO, prefix="mujoco", endpoint=seeded.endpoint)
    files = {f.path: f for f in remote.list_files("objects/thor/v1")}
    archive = files["objects/thor/v1/part-1.tar.zst"]
    assert archive.identity.content_id == hashlib.sha256(DATA).hexdigest()
    assert archive.identity.size == len(DATA)
    sizes = files["objects/thor/v1/sizes.json"]
    blob = b'{"part-1.tar.zst": 0.8}'
    assert sizes.identity.content_id == hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()
    pin = Pin(archive.identity)
    seeded.faults.truncate(after=100_000, path="/cdn/*")
    assert b"".join(remote.stream("objects/thor/v1/part-1.tar.zst", pin=pin)) == DATA
    assert pin.identity.etag == f'"{hashlib.sha256(DATA).hexdigest()}"'  # the CDN answer's ETag


def test_a_download_at_a_commit_is_pinned_even_without_validators(seeded: FakeHub) -> None:
    remote = HfRemote(REPO, endpoint=seeded.endpoint)
    pin = Pin()
    assert b"".join(remote.stream(ARCHIVE, 0, 10, pin=pin)) == DATA[:10]
    assert pin.identity.content_id == f"{seeded.head(REPO)}:{ARCHIVE}"
