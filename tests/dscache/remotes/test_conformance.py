"""The contract every remote backend keeps, run against each of them (see conformance.py, which also
says how to add a backend). Backend-specific behaviour stays in test_<backend>.py."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from dscache.api.names import VersionKey
from dscache.install.ingest import VerificationError, fetch_file
from dscache.install.staging import StagingPaths
from dscache.layouts.files import plan_files
from dscache.layouts.plan import WorkItem
from dscache.remotes.base import Identity, NotFoundError, ObjectChangedError, Pin, Remote, RemoteError
from dscache.remotes.retry import RetryPolicy
from tests.dscache.remotes.conformance import BACKENDS, Backend, Capability, Network

F = TypeVar("F", bound=Callable[..., None])

SIZE = 1_500_000
DATA = bytes((i * 7 + i // 251) % 256 for i in range(SIZE))
NEW = DATA[::-1]  # another object of the same size
PATH = "objects/thor/v1/part-1.tar.zst"
EMPTY = "objects/thor/v1/empty.json"
MISSING = "objects/thor/v1/missing.json"


def needs(*capabilities: Capability) -> Callable[[F], F]:
    """Run the test against the backends that have all of `capabilities`."""

    def mark(test: F) -> F:
        test.needs = capabilities  # type: ignore[attr-defined]
        return test

    return mark


def lacks(capability: Capability) -> Callable[[F], F]:
    """Run the test against the backends without `capability` (what they do instead)."""

    def mark(test: F) -> F:
        test.lacks = capability  # type: ignore[attr-defined]
        return test

    return mark


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    wanted = set(getattr(metafunc.function, "needs", ()))
    without = getattr(metafunc.function, "lacks", None)
    names = [
        b.name
        for b in BACKENDS
        if wanted <= b.capabilities and (without is None or without not in b.capabilities)
    ]
    metafunc.parametrize("backend", names, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    (chosen,) = [b for b in BACKENDS if b.name == request.param]
    return chosen.fixture(request)


@pytest.fixture
def remote(backend: Backend) -> Remote:
    """The remote holding DATA at PATH."""
    backend.put(PATH, DATA)
    return backend.open()


def served(backend: Backend) -> Network:
    net = backend.network
    assert net is not None
    return net


def ranges(net: Network, path: str = PATH) -> list[str | None]:
    return [r.range for r in net.log.find(net.data(path), method="GET")]


def statuses(net: Network, path: str = PATH) -> list[int]:
    return [r.status for r in net.log.find(net.data(path), method="GET")]


def resumed_from(net: Network, asked: str | None, reached: int) -> tuple[int, str]:
    """(start, end) of a resume's Range, checked to start at the byte reached (less the slack)."""
    assert asked is not None and asked.startswith("bytes=")
    first, _, last = asked.removeprefix("bytes=").partition("-")
    assert reached - net.resume_slack <= int(first) <= reached, (asked, reached)
    return int(first), last


def _unlocked() -> None:
    """The fence of a transfer that runs without the writer lock (nothing else writes here)."""


# --- reading -----------------------------------------------------------------------------------


def test_whole_objects_and_ranges(remote: Remote) -> None:
    assert remote.read_bytes(PATH) == DATA
    assert b"".join(remote.stream(PATH, 100, 1000)) == DATA[100:1100]
    assert b"".join(remote.stream(PATH, 1000, 5000)) == DATA[1000:6000]
    assert b"".join(remote.stream(PATH, SIZE - 10)) == DATA[-10:]
    assert b"".join(remote.stream(PATH, 2000)) == DATA[2000:]
    assert b"".join(remote.stream(PATH, 5, 0)) == b""


def test_empty_objects(backend: Backend) -> None:
    backend.put(EMPTY, b"")
    remote = backend.open()
    assert remote.read_bytes(EMPTY) == b""
    assert b"".join(remote.stream(EMPTY)) == b""
    assert b"".join(remote.stream(EMPTY, 0, 0)) == b""
    if "list" in backend.capabilities:
        assert [(f.path, f.size) for f in remote.list_files("objects/thor/v1")] == [(EMPTY, 0)]


def test_a_missing_object_is_not_found_without_retries(backend: Backend, remote: Remote) -> None:
    with pytest.raises(NotFoundError):
        remote.read_bytes(MISSING)
    with pytest.raises(NotFoundError):
        b"".join(remote.stream(MISSING, 10, 100))
    if backend.network is not None:
        assert statuses(backend.network, MISSING) == [404, 404]


def test_unsafe_paths_are_refused_before_any_request(backend: Backend, remote: Remote) -> None:
    for bad in ("../etc/passwd", "/abs", "a//b", "a/./b", "", "objects/../../secret"):
        with pytest.raises(RemoteError, match="unsafe"):
            remote.read_bytes(bad)
        with pytest.raises(RemoteError, match="unsafe"):
            b"".join(remote.stream(bad))
    if backend.network is not None:
        assert backend.network.log.all() == []


def test_a_range_past_the_end_fails_cleanly(remote: Remote) -> None:
    with pytest.raises(RemoteError, match=f"ends at {SIZE}"):
        b"".join(remote.stream(PATH, SIZE - 10, 100))


def test_reading_from_the_end_is_empty(backend: Backend, remote: Remote) -> None:
    assert b"".join(remote.stream(PATH, SIZE)) == b""
    if backend.network is not None:
        assert statuses(backend.network) == [416]  # the server's "nothing there", taken as the end


def test_a_total_other_than_the_pinned_size_is_another_object(backend: Backend, remote: Remote) -> None:
    chunks = remote.stream(PATH, pin=Pin(Identity(size=SIZE + 1)))
    with pytest.raises(ObjectChangedError, match=f"size {SIZE + 1} -> {SIZE}"):
        next(chunks)
    if backend.network is not None:
        assert len(ranges(backend.network)) == 1


def test_parallel_streams_share_one_remote(backend: Backend, remote: Remote) -> None:
    if backend.network is not None:
        backend.network.faults.drop(after=50_000, times=4, path=backend.network.data(PATH))
    ok: dict[int, bool] = {}

    def fetch(i: int) -> None:
        got = b"".join(remote.stream(PATH, i * 100_000, 300_000))
        ok[i] = got == DATA[i * 100_000 : i * 100_000 + 300_000]

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ok == {0: True, 1: True, 2: True, 3: True}
    if backend.network is not None:
        assert sum(r.fault == "drop" for r in backend.network.log.all()) == 4


# --- listing and writing -------------------------------------------------------------------------


@needs("list")
def test_listing_is_recursive_sorted_and_scoped(backend: Backend) -> None:
    backend.put(PATH, DATA)
    backend.put("objects/thor/v1/meta.json", b"{}")
    backend.put("objects/thor/v1/sub/b.json", b"[1]")
    backend.put("objects/thor/v10/c.json", b"c")
    backend.put("other/x.bin", b"x")
    remote = backend.open()
    assert [(f.path, f.size) for f in remote.list_files("objects/thor/v1")] == [
        ("objects/thor/v1/meta.json", 2),
        ("objects/thor/v1/part-1.tar.zst", SIZE),
        ("objects/thor/v1/sub/b.json", 3),
    ]
    assert remote.list_files("objects/nothing-here") == []


@needs("list", "faults")
def test_a_throttled_listing_is_retried(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.status(503, times=2, path=net.listing)
    assert [f.path for f in remote.list_files("objects")] == [PATH]
    assert [r.status for r in net.log.find(net.listing)] == [503, 503, 200]


@lacks("list")
def test_a_remote_that_cannot_list_says_so(remote: Remote) -> None:
    with pytest.raises(RemoteError, match="cannot list"):
        remote.list_files("objects")


@needs("write")
def test_put_file_then_read_back(backend: Backend, remote: Remote, tmp_path: Path) -> None:
    local = tmp_path / "a.bin"
    local.write_bytes(b"uploaded bytes")
    remote.put_file("objects/thor/v2/a.bin", local)
    assert remote.read_bytes("objects/thor/v2/a.bin") == b"uploaded bytes"
    if "list" in backend.capabilities:
        assert [(f.path, f.size) for f in remote.list_files("objects/thor/v2")] == [
            ("objects/thor/v2/a.bin", 14)
        ]


@lacks("write")
def test_a_read_only_remote_refuses_uploads(remote: Remote, tmp_path: Path) -> None:
    local = tmp_path / "a.bin"
    local.write_bytes(b"x")
    with pytest.raises(RemoteError, match="read-only"):
        remote.put_file("objects/thor/v2/a.bin", local)


# --- downloads pinned to one object --------------------------------------------------------------


@needs("list")
def test_the_listing_identifies_what_downloads_are_held_to(backend: Backend, remote: Remote) -> None:
    (listed,) = remote.list_files("objects/thor/v1")
    assert listed.identity.size == SIZE and listed.identity.validated
    pin = Pin(listed.identity)
    if backend.network is not None:
        backend.network.faults.drop(after=300_000, path=backend.network.data(PATH))
    assert b"".join(remote.stream(listed.path, pin=pin)) == DATA
    if "conditional" in backend.capabilities:
        gets = served(backend).log.find(served(backend).data(PATH), method="GET")
        assert [r.headers.get("if-match") for r in gets] == [listed.identity.etag] * 2
    backend.replace(PATH, NEW)
    if "mutable" in backend.capabilities:
        with pytest.raises(ObjectChangedError, match="changed"):
            b"".join(remote.stream(listed.path, pin=pin))
    else:  # the remote reads the revision it listed
        assert b"".join(remote.stream(listed.path, pin=pin)) == DATA


@needs("mutable")
def test_a_download_pinned_to_a_replaced_object_fails(backend: Backend, remote: Remote) -> None:
    pin = Pin()
    assert b"".join(remote.stream(PATH, pin=pin)) == DATA
    backend.replace(PATH, NEW)
    with pytest.raises(ObjectChangedError, match="changed"):
        b"".join(remote.stream(PATH, 10, 100, pin=pin))
    assert remote.read_bytes(PATH) == NEW  # an unpinned read takes the object there now


@needs("mutable")
def test_an_object_replaced_mid_stream_is_never_spliced(backend: Backend, remote: Remote) -> None:
    if backend.network is not None:  # the first answer ends early: the rest is asked for again
        backend.network.faults.truncate(after=400_000, path=backend.network.data(PATH))
    chunks = remote.stream(PATH)
    first = next(chunks)
    assert first == DATA[: len(first)]
    backend.replace(PATH, NEW)
    with pytest.raises(ObjectChangedError, match="changed"):
        b"".join(chunks)


@lacks("mutable")
def test_an_open_remote_keeps_reading_its_revision(backend: Backend, remote: Remote) -> None:
    if backend.network is not None:
        backend.network.faults.truncate(after=400_000, path=backend.network.data(PATH))
    chunks = remote.stream(PATH)
    first = next(chunks)
    backend.replace(PATH, NEW)
    assert first + b"".join(chunks) == DATA
    assert remote.read_bytes(PATH) == DATA
    assert backend.open().read_bytes(PATH) == NEW  # a remote opened now reads the new revision


@needs("faults", "conditional")
def test_every_request_of_a_pinned_download_is_conditional(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    pin = Pin()
    assert b"".join(remote.stream(PATH, pin=pin)) == DATA
    etag = pin.identity.etag
    assert etag and pin.identity.size == SIZE and pin.identity.last_modified
    assert net.log.find(net.data(PATH), method="GET")[-1].headers.get("if-match") is None  # unknown yet
    net.faults.drop(after=300_000, path=net.data(PATH))
    assert b"".join(remote.stream(PATH, 10, 1_000_000, pin=pin)) == DATA[10:1_000_010]
    gets = net.log.find(net.data(PATH), method="GET")[1:]
    assert [r.headers.get("if-match") for r in gets] == [etag, etag]
    backend.replace(PATH, NEW)
    with pytest.raises(ObjectChangedError, match="changed"):
        b"".join(remote.stream(PATH, pin=pin))
    assert statuses(net)[-1] == 412


# --- transient failures, within the retry budget --------------------------------------------------


@needs("faults")
def test_a_5xx_burst_is_retried(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.status(503, times=3, path=net.data(PATH))
    assert remote.read_bytes(PATH) == DATA
    assert statuses(net) == [503, 503, 503, 206]


@needs("faults")
def test_throttling_with_retry_after_is_retried(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.status(429, times=1, retry_after=0.01, path=net.data(PATH))
    assert remote.read_bytes(PATH) == DATA
    assert statuses(net) == [429, 206]


@needs("faults")
def test_a_persistent_failure_gives_up_after_the_attempts_without_leaking_secrets(
    backend: Backend, remote: Remote
) -> None:
    net = served(backend)
    net.faults.status(500, times=None, path=net.data(PATH))
    with pytest.raises(RemoteError, match=r"HTTP 500.*gave up after 5 attempt") as err:
        remote.read_bytes(PATH)
    assert len(statuses(net)) == 5  # DSCACHE_RETRY_ATTEMPTS in tests/conftest.py
    assert all(secret not in str(err.value) for secret in backend.secrets)


@needs("faults")
def test_the_deadline_bounds_the_retries(backend: Backend) -> None:
    backend.put(PATH, DATA)
    remote = backend.open(RetryPolicy(attempts=1000, base_delay=0.05, max_delay=0.05, deadline=0.3))
    net = served(backend)
    net.faults.status(503, times=None, path=net.data(PATH))
    with pytest.raises(RemoteError, match="gave up"):
        remote.read_bytes(PATH)
    assert 2 <= len(statuses(net)) < 40


@needs("faults")
def test_dropped_connections_are_resumed_with_identical_bytes(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.drop(after=300_000, times=2, path=net.data(PATH))
    assert b"".join(remote.stream(PATH)) == DATA
    assert [r.fault for r in net.log.find(net.data(PATH), method="GET")] == ["drop", "drop", None]


@needs("faults")
def test_a_cut_body_resumes_at_the_byte_reached(backend: Backend, remote: Remote) -> None:
    # Clean closes after 300000 and then 200000 bytes (all delivered): each resume asks for the rest.
    net = served(backend)
    net.faults.truncate(after=300_000, path=net.data(PATH))
    net.faults.truncate(after=200_000, path=net.data(PATH))
    assert b"".join(remote.stream(PATH)) == DATA
    first, second, third = ranges(net)
    assert first == "bytes=0-"
    start, end = resumed_from(net, second, 300_000)
    assert end == "1499999"
    assert resumed_from(net, third, start + 200_000)[1] == "1499999"


@needs("faults")
def test_a_cut_inside_a_range_keeps_the_range_end(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.truncate(after=100_000, path=net.data(PATH))
    assert b"".join(remote.stream(PATH, 200_000, 800_000)) == DATA[200_000:1_000_000]
    asked, resumed = ranges(net)
    assert asked == "bytes=200000-999999"
    assert resumed_from(net, resumed, 300_000)[1] == "999999"


@needs("faults")
def test_a_cut_body_is_never_taken_for_the_end(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.truncate(after=1000, path=net.data(PATH))
    assert remote.read_bytes(PATH) == DATA
    assert len(ranges(net)) == 2


@needs("faults")
def test_a_short_lying_content_length_is_detected(backend: Backend, remote: Remote) -> None:
    # 206 with an honest Content-Range but a short Content-Length: the missing tail is fetched.
    net = served(backend)
    net.faults.short(after=1234, path=net.data(PATH))
    assert b"".join(remote.stream(PATH, 10, 100_000)) == DATA[10:100_010]
    assert ranges(net) == ["bytes=10-100009", f"bytes={10 + 1234}-100009"]


@needs("faults")
def test_a_whole_object_behind_a_lying_content_length_is_completed(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.short(after=200_000, path=net.data(PATH))
    assert remote.read_bytes(PATH) == DATA
    assert ranges(net) == ["bytes=0-", "bytes=200000-1499999"]


@needs("faults")
def test_a_stalled_body_times_out_and_resumes(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    backend.put(PATH, DATA)
    monkeypatch.setenv("DSCACHE_READ_TIMEOUT", "0.3")
    remote = backend.open()
    net = served(backend)
    net.faults.stall(seconds=2, after=200_000, path=net.data(PATH))
    assert remote.read_bytes(PATH) == DATA
    first, resumed = ranges(net)
    assert first == "bytes=0-" and resumed_from(net, resumed, 200_000)[1] == "1499999"


@needs("faults")
def test_connections_are_reused(backend: Backend, remote: Remote) -> None:
    for _ in range(3):
        assert remote.read_bytes(PATH) == DATA
    net = served(backend)
    assert len({r.peer for r in net.log.find(net.data(PATH))}) == 1


@needs("faults", "digests", "list")
def test_a_corrupted_body_is_caught_by_verification(backend: Backend, remote: Remote, tmp_path: Path) -> None:
    # The flipped byte keeps the length: only a digest the remote vouches for can tell.
    net = served(backend)
    (item,) = plan_files(remote, VersionKey("objects", "thor", "v1"), "objects/thor/v1").items
    net.faults.corrupt(times=1, path=net.data(PATH))
    staging = StagingPaths(tmp_path / "staging")
    result = fetch_file(remote, item, staging, lambda n: None, fence=_unlocked)
    assert (staging.files / item.name).read_bytes() == DATA and result.size == SIZE
    assert [r.fault for r in net.log.find(net.data(PATH), method="GET")] == ["corrupt", None]
    net.faults.corrupt(times=None, path=net.data(PATH))
    with pytest.raises(VerificationError, match="does not match"):
        fetch_file(remote, item, StagingPaths(tmp_path / "again"), lambda n: None, fence=_unlocked)


# --- the legal answers to a Range request ---------------------------------------------------------


@needs("faults")
def test_a_short_206_is_continued_not_taken_for_the_end(backend: Backend, remote: Remote) -> None:
    # `Range: bytes=0-` answered with 64 KiB and `Content-Range: bytes 0-65535/1500000`.
    net = served(backend)
    net.faults.partial(64 << 10, times=3, path=net.data(PATH))
    assert remote.read_bytes(PATH) == DATA
    assert ranges(net) == [
        "bytes=0-",
        "bytes=65536-1499999",
        "bytes=131072-1499999",
        "bytes=196608-1499999",
    ]


@needs("faults")
def test_a_short_206_inside_a_range_is_continued(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.partial(1000, path=net.data(PATH))
    assert b"".join(remote.stream(PATH, 5000, 20_000)) == DATA[5000:25_000]
    assert ranges(net) == ["bytes=5000-24999", "bytes=6000-24999"]


@needs("faults")
def test_a_206_starting_earlier_than_asked_is_skipped_into(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.early(by=4096, path=net.data(PATH))
    assert b"".join(remote.stream(PATH, 10_000, 5000)) == DATA[10_000:15_000]
    assert ranges(net) == ["bytes=10000-14999"]


@needs("faults")
def test_a_206_starting_later_than_asked_falls_back_to_the_whole_body(
    backend: Backend, remote: Remote
) -> None:
    net = served(backend)
    net.faults.late(by=4096, path=net.data(PATH))
    assert b"".join(remote.stream(PATH, 10_000, 5000)) == DATA[10_000:15_000]
    gets = net.log.find(net.data(PATH), method="GET")
    assert [(r.range, r.status) for r in gets] == [("bytes=10000-14999", 206), (None, 200)]


@needs("faults")
def test_a_206_without_content_range_falls_back_to_the_whole_body(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.nocontentrange(path=net.data(PATH))
    assert b"".join(remote.stream(PATH, 1000, 2000)) == DATA[1000:3000]
    assert ranges(net) == ["bytes=1000-2999", None]


@needs("faults")
def test_a_multipart_byteranges_answer_is_not_read_as_data(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.multipart(path=net.data(PATH))
    assert remote.read_bytes(PATH) == DATA
    assert ranges(net) == ["bytes=0-", None]  # never asks for several ranges


@needs("faults")
def test_a_200_ignoring_the_range_is_skipped_to_the_offset(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.norange(path=net.data(PATH))
    assert b"".join(remote.stream(PATH, 700_000, 1000)) == DATA[700_000:701_000]
    assert statuses(net) == [200]


@needs("faults")
def test_a_200_ignoring_the_range_of_a_resume_still_gives_exact_bytes(
    backend: Backend, remote: Remote
) -> None:
    net = served(backend)
    net.faults.truncate(after=500_000, path=net.data(PATH))
    net.faults.norange(path=net.data(PATH))
    assert remote.read_bytes(PATH) == DATA
    assert statuses(net) == [206, 200]


@needs("faults")
def test_chunked_bodies_without_content_length(backend: Backend, remote: Remote) -> None:
    net = served(backend)
    net.faults.chunked(times=2, path=net.data(PATH))
    assert remote.read_bytes(PATH) == DATA
    net.faults.chunked(path=net.data(PATH))
    assert b"".join(remote.stream(PATH, 1_000_000)) == DATA[1_000_000:]
    assert [r.fault for r in net.log.find(net.data(PATH), method="GET")] == ["chunked"] * 2  # read whole


@needs("faults")
def test_a_body_without_length_cut_short_is_completed_from_the_pinned_size(
    backend: Backend, remote: Remote
) -> None:
    # Neither Content-Length nor chunking: a close after 300000 bytes looks like the end, except that
    # the size is known from a listing or manifest (the pin)...
    net = served(backend)
    net.faults.unframed(after=300_000, path=net.data(PATH))
    net.faults.norange(path=net.data(PATH))  # ...and the Range of the resume is ignored
    assert b"".join(remote.stream(PATH, pin=Pin(Identity(size=SIZE)))) == DATA
    first, resumed = ranges(net)
    assert first == "bytes=0-1499999" and resumed_from(net, resumed, 300_000)[1] == "1499999"


# --- many streams per object ----------------------------------------------------------------------


def test_an_object_fetched_in_parts_is_the_object(
    backend: Backend, remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch layer's parts (`install.parts`) read any remote through its ranged `stream`."""
    monkeypatch.setenv("DSCACHE_PART_SIZE", str(256 << 10))
    digest = hashlib.sha256(DATA).hexdigest()
    item = WorkItem(kind="file", name="part-1.tar.zst", remote_path=PATH, size=SIZE, sha256=digest)
    staging = StagingPaths(tmp_path / "staging")
    result = fetch_file(remote, item, staging, lambda n: None, fence=_unlocked, streams=4)
    assert (staging.files / item.name).read_bytes() == DATA and result.sha256 == digest
    if backend.network is not None:
        net = backend.network
        parts = [(n * (256 << 10), min((n + 1) * (256 << 10), SIZE) - 1) for n in range(6)]
        assert sorted(r or "" for r in ranges(net)) == sorted(f"bytes={a}-{b}" for a, b in parts)
