"""Two producers publishing one version at once: the remote always ends up holding one producer's
version whole (an install of it succeeds, with exactly that producer's bytes). Where the remote can
hold a lease (a local directory, S3), the second publisher refuses with one line naming the first."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.layouts.manifest import DSCACHE_MANIFEST
from dscache.layouts.molmospaces import MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST
from dscache.layouts.offered import offered_versions
from dscache.layouts.published import PUBLISH_LEASE
from dscache.publish.lease import Holder, is_stale, publish_lease
from dscache.publish.pack import PublishError
from dscache.publish.stale import removable
from dscache.publish.upload import PublishOptions, PublishResult, SupersededError, publish
from dscache.remotes.base import Remote
from dscache.remotes.file import FileRemote
from dscache.store.liveness import host_name
from dscache.store.paths import CachePaths
from tests.dscache.remotes.conformance import (
    BACKENDS,
    AzureBackend,
    Backend,
    FileBackend,
    GcsBackend,
    S3Backend,
)
from tests.factories import TreeSpec, dataset_snapshot, make_tree, tree_snapshot
from tests.pids import dead_pid
from tests.servers.azure import ACCOUNT
from tests.servers.s3 import S3Env

KEY = VersionKey("objects", "big", "v1")
OLD: TreeSpec = {"a/one.txt": 3000, "b/two.txt": 3000}
TREE_A: TreeSpec = {"a/one.txt": 5000, "b/two.txt": 2000}
TREE_B: TreeSpec = {"a/one.txt": 2000, "b/two.txt": 5000}
OPTIONS = PublishOptions(archive_size=4 << 10, threads=1, overwrite=True)
METADATA = {MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST, DSCACHE_MANIFEST}


def pausing(remote: Remote, gate: threading.Event) -> Remote:
    """`remote`, whose first metadata upload waits until `gate` is set (the publish has uploaded its
    archives and not yet switched the manifests)."""
    kind = type(remote)

    def put_file(self: Remote, path: str, local: Path) -> None:
        if path.endswith(MOLMO_COMBINED_TRIES):
            assert gate.wait(60)
        kind.put_file(self, path, local)

    remote.__class__ = type(f"Pausing{kind.__name__}", (kind,), {"put_file": put_file})
    return remote


class Place:
    """A remote kind under test: its install URL and how to open it (optionally pausing)."""

    def __init__(self, url: str, backend: Backend) -> None:
        self.url, self.backend = url, backend

    def open(self, gate: threading.Event | None = None) -> Remote:
        remote = self.backend.open()
        return remote if gate is None else pausing(remote, gate)


@pytest.fixture(params=["file", "s3", "gcs", "azure"])
def place(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Place:
    (kind,) = [b for b in BACKENDS if b.name == request.param]
    backend = kind.fixture(request)
    if isinstance(backend, S3Backend):
        monkeypatch.setenv("AWS_ENDPOINT_URL", backend.env.endpoint)
        return Place(f"s3://{backend.env.bucket}/{backend.PREFIX}", backend)
    if isinstance(backend, GcsBackend):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", backend.env.endpoint)
        return Place(f"gs://{backend.env.bucket}/{backend.PREFIX}", backend)
    if isinstance(backend, AzureBackend):
        monkeypatch.delenv("AZURE_STORAGE_KEY")
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", backend.env.server.connection_string())
        return Place(f"az://{ACCOUNT}/{backend.env.container}/{backend.PREFIX}", backend)
    assert isinstance(backend, FileBackend)
    return Place(backend.open().url, backend)


def install_snapshot(place: Place, cache: Path) -> dict[str, bytes | str | None]:
    argv = ["install", "-q", "--cache", str(cache), "--source", place.url, "--version", str(KEY)]
    assert main(argv) == 0
    return dataset_snapshot(CachePaths(cache).version_dir(KEY))


def version_files(remote: Remote) -> set[str]:
    return {f.path.removeprefix(f"{KEY.rel}/") for f in remote.list_files(KEY.rel)}


def test_a_second_publish_while_the_first_uploads_is_refused_naming_the_first(
    place: Place, tmp_path: Path
) -> None:
    publish(make_tree(tmp_path / "old", OLD), place.open(), KEY, OPTIONS)
    tree_a, tree_b = make_tree(tmp_path / "a", TREE_A), make_tree(tmp_path / "b", TREE_B)
    gate = threading.Event()
    first: list[PublishResult | BaseException] = []

    def producer_a() -> None:
        try:
            first.append(publish(tree_a, place.open(gate), KEY, OPTIONS))
        except BaseException as err:  # handed to the test thread
            first.append(err)

    thread = threading.Thread(target=producer_a)
    thread.start()
    try:
        # the old version (2 archives, 3 metadata files), A's lease and A's 2 archives
        while len(version_files(place.open())) < 8:
            assert thread.is_alive() and not gate.wait(0.02)
        with pytest.raises(
            PublishError, match=r"another publish of this version is running \(process \d+ on "
        ):
            publish(tree_b, place.open(), KEY, OPTIONS)
    finally:
        gate.set()
        thread.join(60)
    assert [type(r) for r in first] == [PublishResult]
    assert install_snapshot(place, tmp_path / "cache") == tree_snapshot(tree_a)
    remote = place.open()
    assert PUBLISH_LEASE not in version_files(remote)  # released


def _race(place: Place, trees: list[Path]) -> dict[int, PublishResult | PublishError]:
    """Publish each of `trees` in its own thread, all started at once; each one's outcome."""
    outcomes: dict[int, PublishResult | PublishError] = {}
    start = threading.Barrier(len(trees))

    def producer(n: int) -> None:
        start.wait()
        try:
            outcomes[n] = publish(trees[n], place.open(), KEY, OPTIONS)
        except PublishError as err:
            outcomes[n] = err

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(len(trees))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_overwrites_racing_in_threads_leave_one_whole_version(place: Place, tmp_path: Path) -> None:
    publish(make_tree(tmp_path / "old", OLD), place.open(), KEY, OPTIONS)
    for round_ in range(4):
        trees = [make_tree(tmp_path / f"r{round_}-{n}", spec) for n, spec in enumerate((TREE_A, TREE_B))]
        outcomes = _race(place, trees)
        won = [n for n, outcome in outcomes.items() if isinstance(outcome, PublishResult)]
        assert won and len(outcomes) == 2, outcomes
        installed = install_snapshot(place, tmp_path / f"cache{round_}")
        assert installed in [tree_snapshot(trees[n]) for n in won]


class NoLeaseFile(FileRemote):
    """A local directory as a remote without a conditional create (as GCS, Azure, the Hub): no lease.
    With `gate`: its first metadata upload waits for it (`before_switch`), or, once the dscache
    manifest is up, its next manifest read does (after the switch, before the removal)."""

    create_exclusive = None

    def __init__(self, root: Path, gate: threading.Event | None = None, *, before_switch: bool) -> None:
        super().__init__(root)
        self.gate, self.before_switch, self.switched = gate, before_switch, False

    def put_file(self, path: str, local: Path) -> None:
        if self.gate is not None and self.before_switch and path.endswith(MOLMO_COMBINED_TRIES):
            assert self.gate.wait(60)
        super().put_file(path, local)
        self.switched = self.switched or path.endswith(DSCACHE_MANIFEST)

    def read_bytes(self, path: str) -> bytes:
        if self.gate is not None and self.switched and not self.before_switch:
            assert self.gate.wait(60)
        return super().read_bytes(path)


def _publish_or_error(tree: Path, remote: Remote) -> PublishResult | BaseException:
    try:
        return publish(tree, remote, KEY, OPTIONS)
    except PublishError as err:
        return err


def _race_without_lease(tmp_path: Path, *, before_switch: bool) -> list[PublishResult | BaseException]:
    """Producer A publishes TREE_A to a lease-less remote and waits (before or after its switch) while
    producer B publishes TREE_B in full; then A goes on. A's outcome, B's outcome."""
    root = tmp_path / "remote"
    publish(make_tree(tmp_path / "old", OLD), FileRemote(root), KEY, OPTIONS)
    tree_a, tree_b = make_tree(tmp_path / "a", TREE_A), make_tree(tmp_path / "b", TREE_B)
    gate = threading.Event()
    outcome: list[PublishResult | BaseException] = []
    paused = NoLeaseFile(root, gate, before_switch=before_switch)
    thread = threading.Thread(target=lambda: outcome.append(_publish_or_error(tree_a, paused)))
    thread.start()
    try:
        while not (paused.switched if not before_switch else len(version_files(FileRemote(root))) >= 7):
            assert thread.is_alive() and not gate.wait(0.02)  # A's archives are up beside the old ones
        outcome_b = _publish_or_error(tree_b, NoLeaseFile(root, before_switch=False))
    finally:
        gate.set()
        thread.join(60)
    return [*outcome, outcome_b]


def _local(tmp_path: Path) -> Place:
    return Place(f"file://{tmp_path / 'remote'}", FileBackend(tmp_path / "remote"))


def test_without_a_lease_a_publish_switched_after_another_says_it_was_replaced(tmp_path: Path) -> None:
    outcome_a, outcome_b = _race_without_lease(tmp_path, before_switch=False)
    assert isinstance(outcome_b, PublishResult)
    assert isinstance(outcome_a, SupersededError)
    assert str(outcome_a) == (
        f"another publish replaced {KEY} at file://{tmp_path / 'remote'}/{KEY.rel} after this one: "
        "the remote holds that one"
    )
    assert install_snapshot(_local(tmp_path), tmp_path / "cache") == tree_snapshot(tmp_path / "b")


def test_without_a_lease_a_publish_never_removes_what_another_one_uploaded(tmp_path: Path) -> None:
    outcome_a, outcome_b = _race_without_lease(tmp_path, before_switch=True)
    assert isinstance(outcome_b, PublishResult) and isinstance(outcome_a, PublishResult)
    assert install_snapshot(_local(tmp_path), tmp_path / "cache") == tree_snapshot(tmp_path / "a")


def test_removal_spares_what_the_live_manifest_names_and_what_appeared_meanwhile() -> None:
    vdir = "objects/big/v1"
    stale = [f"{vdir}/a_0000.tar.zst", f"{vdir}/a-0123456789ab_0000.tar.zst", f"{vdir}/b_0001.tar.zst"]
    # a_0000 was the replaced version's; a-0123… was uploaded meanwhile (another publisher's);
    # b_0001 was left by a killed publish but the live manifest names it
    assert removable(
        stale, vdir, replaced={"a_0000.tar.zst"}, earlier={f"{vdir}/b_0001.tar.zst"}, live={"b_0001.tar.zst"}
    ) == [f"{vdir}/a_0000.tar.zst"]


def test_a_lease_lapses_only_after_its_holder_stops_renewing_it() -> None:
    holder = Holder("builder-1", 42, started=1000.0, renewed=1500.0)
    assert not is_stale(holder, now=1500.0 + 600.0)
    assert is_stale(holder, now=1500.0 + 601.0)
    assert is_stale(None, now=0.0)  # unreadable: not a lease this publish can honour
    assert Holder.loads(holder.dumps()) == holder


def test_a_killed_publishers_lapsed_lease_is_taken_over(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    lease = root / KEY.rel / PUBLISH_LEASE
    lease.parent.mkdir(parents=True)
    lease.write_bytes(Holder("gone", 7, started=0.0, renewed=0.0).dumps())
    logged: list[str] = []
    with publish_lease(FileRemote(root), KEY.rel, str(KEY), logged.append) as held:
        assert held == f"{KEY.rel}/{PUBLISH_LEASE}"
        assert Holder.loads(lease.read_bytes()) != Holder("gone", 7, started=0.0, renewed=0.0)
    assert logged == [
        f"taking over the lapsed publish lease {FileRemote(root).url}/{KEY.rel}/{PUBLISH_LEASE}"
    ]
    assert not lease.exists()


def test_the_cli_refuses_a_second_publish_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "remote"
    tree = make_tree(tmp_path / "tree", OLD)
    with publish_lease(FileRemote(root), KEY.rel, str(KEY)):
        code = main(["publish", str(tree), "--to", f"file://{root}", "--version", str(KEY), "-q"])
    err = capsys.readouterr().err.splitlines()
    assert code != 0
    assert len(err) == 1 and "another publish of this version is running" in err[0], err
    assert not (root / KEY.rel / "a_0000.tar.zst").exists()


def test_ls_remote_does_not_count_a_running_publishs_lease(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    publish(make_tree(tmp_path / "old", OLD), FileRemote(root), KEY, OPTIONS)
    with (
        publish_lease(FileRemote(root), KEY.rel, str(KEY)),
        publish_lease(FileRemote(root), "objects/big/v2", "objects/big=v2"),
    ):
        offered = offered_versions(FileRemote(root).list_files(""))
    assert [(o.key, o.layout, o.files) for o in offered] == [(KEY, "Archives", 5)]


def test_the_holder_renews_its_lease_while_it_publishes(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    lease = root / KEY.rel / PUBLISH_LEASE
    with publish_lease(FileRemote(root), KEY.rel, str(KEY), renew_seconds=0.05):
        first = Holder.loads(lease.read_bytes())
        assert first is not None
        deadline = time.monotonic() + 10
        while (now := Holder.loads(lease.read_bytes())) == first:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert now is not None and now.renewed > first.renewed and now.started == first.started


def test_two_publish_processes_racing_leave_one_whole_version(tmp_path: Path) -> None:
    """The adversarial script: two `dscache publish --overwrite` processes of one version at once."""
    root = tmp_path / "remote"
    publish(make_tree(tmp_path / "old", OLD), FileRemote(root), KEY, OPTIONS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for round_ in range(3):
        trees = [make_tree(tmp_path / f"r{round_}-{n}", spec) for n, spec in enumerate((TREE_A, TREE_B))]
        argv = [
            "--to",
            f"file://{root}",
            "--version",
            str(KEY),
            "--archive-size",
            "4KiB",
            "--overwrite",
            "-q",
        ]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "dscache", "publish", str(tree), *argv],
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for tree in trees
        ]
        codes = [p.wait(120) for p in procs]
        errors = [p.stderr.read() if p.stderr else "" for p in procs]
        for proc in procs:
            if proc.stderr:
                proc.stderr.close()
        assert 0 in codes, errors
        for code, err in zip(codes, errors, strict=True):  # a loser says why, in one line
            assert code == 0 or (len(err.splitlines()) == 1 and "another publish" in err), err
        won = [tree_snapshot(tree) for tree, code in zip(trees, codes, strict=True) if code == 0]
        place = _local(tmp_path)
        assert install_snapshot(place, tmp_path / f"cache{round_}") in won


def test_an_s3_store_without_conditional_writes_publishes_without_a_lease(s3: S3Env, tmp_path: Path) -> None:
    """An older S3-compatible server answers a conditional PutObject 501: the publish goes on (the
    removal rule still guards the live version) and says it holds no lease."""
    remote = S3Backend(s3).open()
    s3.server.faults.status(501, times=None, path=f"*/{PUBLISH_LEASE}", method="PUT")
    logged: list[str] = []
    result = publish(make_tree(tmp_path / "tree", OLD), remote, KEY, OPTIONS, log=logged.append)
    said = f"{remote.url} does not support conditional writes: publishing {KEY} at {remote.url}/{KEY.rel}"
    assert f"{said} without a lease" in logged
    assert [a.name for a in result.archives] == ["a_0000.tar.zst", "b_0001.tar.zst"]


def test_a_rerun_on_the_host_of_a_killed_publish_takes_its_lease_at_once(tmp_path: Path) -> None:
    """`kill -9` of a publish leaves its lease; the same publish run again on that host finishes it
    (as `ls-remote` advises for an incomplete publish) without waiting for the lease to lapse."""
    root = tmp_path / "remote"
    tree = make_tree(tmp_path / "tree", OLD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # a process whose pid the lease names, then killed
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    lease = root / KEY.rel / PUBLISH_LEASE
    lease.parent.mkdir(parents=True)
    now = time.time()
    lease.write_bytes(Holder(host_name(), victim.pid, now, now).dumps())
    with pytest.raises(
        PublishError, match=f"another publish of this version is running \\(process {victim.pid} "
    ):
        publish(tree, FileRemote(root), KEY, OPTIONS)
    victim.kill()
    victim.wait(10)
    assert [a.name for a in publish(tree, FileRemote(root), KEY, OPTIONS).archives] == [
        "a_0000.tar.zst",
        "b_0001.tar.zst",
    ]
    assert not lease.exists()


@pytest.mark.parametrize(
    "host",
    [socket.gethostname(), f"{os.uname().nodename}-pidns1"],
    ids=["bare-host-name", "same-node-other-pid-namespace"],
)
def test_a_lease_of_another_pid_namespace_on_this_host_lapses_only_by_its_age(
    tmp_path: Path, host: str
) -> None:
    """Two publish pods on one node's host network share its host name, not their pids: the other's
    pid, dead-looking here, does not let this one take its lease before it lapses (600 s); a lease of
    an older dscache (the bare host name) proves no pid namespace either."""
    root = tmp_path / "remote"
    lease = root / KEY.rel / PUBLISH_LEASE
    lease.parent.mkdir(parents=True)
    pid, now = dead_pid(), time.time()
    lease.write_bytes(Holder(host, pid, now - 700, now - 590).dumps())
    running = f"another publish of this version is running \\(process {pid} on "
    with pytest.raises(PublishError, match=running):
        publish(make_tree(tmp_path / "tree", OLD), FileRemote(root), KEY, OPTIONS)
    assert Holder.loads(lease.read_bytes()) == Holder(host, pid, now - 700, now - 590)
    lease.write_bytes(Holder(host, pid, now - 700, now - 601).dumps())  # not renewed for 601 s
    assert [a.name for a in publish(tmp_path / "tree", FileRemote(root), KEY, OPTIONS).archives] == [
        "a_0000.tar.zst",
        "b_0001.tar.zst",
    ]
    assert not lease.exists()


def test_a_lease_of_a_dead_process_of_this_pid_namespace_is_taken_over_at_once(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    lease = root / KEY.rel / PUBLISH_LEASE
    lease.parent.mkdir(parents=True)
    now = time.time()
    lease.write_bytes(Holder(host_name(), dead_pid(), now, now).dumps())
    logged: list[str] = []
    result = publish(make_tree(tmp_path / "tree", OLD), FileRemote(root), KEY, OPTIONS, log=logged.append)
    assert [a.name for a in result.archives] == ["a_0000.tar.zst", "b_0001.tar.zst"]
    assert f"taking over the lapsed publish lease {FileRemote(root).url}/{KEY.rel}/{PUBLISH_LEASE}" in logged
    assert not lease.exists()


def test_a_lease_taken_over_after_it_lapsed_is_not_released_by_its_old_holder(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    lease = root / KEY.rel / PUBLISH_LEASE
    successor = Holder("builder-2", 99, started=1.0, renewed=time.time())
    with publish_lease(FileRemote(root), KEY.rel, str(KEY)):
        lease.write_bytes(successor.dumps())  # this holder stalled; another took the lease over
    assert Holder.loads(lease.read_bytes()) == successor
