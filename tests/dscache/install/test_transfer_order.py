"""The order an install starts its items in: the item that keeps a worker busiest first. An archive of
many small files extracts for far longer than it downloads (each file is a create on the volume), so
it must not be left for last, when the link would idle while one worker creates its files. And the
workers' first items start one first-byte time apart, so that alike items do not end in step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.install.pipeline import staggered_starts
from tests.dscache.cli.cli_helpers import assert_one_clean_line, run_process
from tests.factories import _info, publish_raw_archives, tar_zst
from tests.servers.files import FileServer

KEY = VersionKey("objects", "thor", "v1")


def test_an_archive_of_many_files_starts_before_a_larger_archive_of_one_file(
    tmp_path: Path, http_server: FileServer
) -> None:
    one_file = os.urandom(600_000)  # incompressible: 600 KB downloaded, one file created
    many = [(_info(f"small/f{i:03}.txt", b"0", size=100), (b"%03d" % i) * 33 + b"\n") for i in range(40)]
    publish_raw_archives(
        http_server.root,
        KEY,
        {
            "a_one.tar.zst": tar_zst([(_info("big.bin", b"0", size=len(one_file)), one_file)]),
            "b_many.tar.zst": tar_zst(many),  # a few KB downloaded, 40 files created
        },
    )
    cache = tmp_path / "cache"
    assert main(["install", "--cache", str(cache), "--source", http_server.url, "--version", str(KEY),
                 "--jobs", "1"]) == 0  # fmt: skip
    fetched = [r.path.rsplit("/", 1)[1] for r in http_server.log.find("*.tar.zst", method="GET")]
    assert list(dict.fromkeys(fetched)) == ["b_many.tar.zst", "a_one.tar.zst"]


def test_the_workers_first_archives_start_one_first_byte_apart(
    tmp_path: Path, http_server: FileServer
) -> None:
    # Alike archives started at once finish in step, and then every worker waits for its next first
    # byte at the same moments while the link idles: the second worker's first archive starts once
    # the first one's first bytes came (here after the server's 0.2 s latency).
    archives = {f"a_{i}.tar.zst": tar_zst([(_info(f"d{i}/f.bin", b"0", size=200_000), os.urandom(200_000))])
                for i in range(3)}  # fmt: skip
    publish_raw_archives(http_server.root, KEY, archives)
    http_server.faults.delay(0.2, times=None, path="*.tar.zst")
    cache = tmp_path / "cache"
    assert main(["install", "--cache", str(cache), "--source", http_server.url, "--version", str(KEY),
                 "--jobs", "2"]) == 0  # fmt: skip
    began = {}
    for request in http_server.log.find("*.tar.zst", method="GET"):
        began.setdefault(request.path.rsplit("/", 1)[1], request.began)
    first, second, _third = sorted(began.values())
    assert second - first >= 0.1
    for name in archives:
        assert (cache / str(KEY.rel) / f"d{name[2]}" / "f.bin").stat().st_size == 200_000


@pytest.mark.parametrize(("tasks", "jobs", "held"), [(3, 2, 2), (60, 4, 4), (4, 4, 1), (1, 4, 1), (2, 1, 1)])
def test_only_workers_that_will_move_on_start_one_after_another(tasks: int, jobs: int, held: int) -> None:
    assert staggered_starts(tasks, jobs) == held


def _first_starts(server: FileServer) -> list[float]:
    """When the server began each archive's first GET, in order."""
    began: dict[str, float] = {}
    for request in server.log.find("*.tar.zst", method="GET"):
        began.setdefault(request.path.rsplit("/", 1)[1], request.began)
    return sorted(began.values())


@pytest.mark.parametrize("jobs", [2, 4])
def test_with_a_remote_slower_than_the_spread_the_workers_first_archives_start_within_it(
    tmp_path: Path, http_server: FileServer, jobs: int
) -> None:
    # The remote takes 0.6 s to its first byte, longer than the whole spread (0.25 s): the workers'
    # first archives start 0.25 s / (jobs - 1) apart, the last one 0.25 s after the first, not after a
    # wait for a first byte that does not come within the spread and a spread on top of it (0.5 s).
    archives = {f"a_{i}.tar.zst": tar_zst([(_info(f"d{i}/f.bin", b"0", size=50_000), os.urandom(50_000))])
                for i in range(jobs + 1)}  # fmt: skip
    publish_raw_archives(http_server.root, KEY, archives)
    http_server.faults.delay(0.6, times=None, path="*.tar.zst")
    cache = tmp_path / "cache"
    assert main(["install", "-q", "--cache", str(cache), "--source", http_server.url, "--version", str(KEY),
                 "--jobs", str(jobs)]) == 0  # fmt: skip
    firsts = _first_starts(http_server)[:jobs]
    assert 0.1 <= firsts[-1] - firsts[0] < 0.25 + 0.1  # the spread, and the scheduler's slack
    for name in archives:
        assert (cache / str(KEY.rel) / f"d{name[2]}" / "f.bin").stat().st_size == 50_000


def test_an_archive_refused_at_once_does_not_hold_back_the_other_workers_first_archives(
    tmp_path: Path, http_server: FileServer
) -> None:
    # The first archive's first byte never comes: the remote refuses it (404) at once. That refusal is
    # the first-byte time the other workers' first archives start apart, not a whole spread (0.25 s).
    sizes = [50_000, 50_000, 50_000, 50_000, 100_000]
    archives = {f"a_{i}.tar.zst": tar_zst([(_info(f"d{i}/f.bin", b"0", size=n), os.urandom(n))])
                for i, n in enumerate(sizes)}  # fmt: skip
    publish_raw_archives(http_server.root, KEY, archives)
    http_server.faults.status(404, path="*/a_4.tar.zst")  # the largest: the first one started
    result = run_process("install", "-q", "--cache", str(tmp_path / "cache"), "--source", http_server.url,
                         "--version", str(KEY), "--jobs", "4")  # fmt: skip
    assert_one_clean_line(result, 1, "a_4.tar.zst", "not found (HTTP 404)")
    firsts = _first_starts(http_server)[:4]
    assert firsts[-1] - firsts[0] < 0.15
