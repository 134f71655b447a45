"""The pure decisions of fetching in parts: how many streams an item gets, the part size, and which
ranges of a partial file are still missing."""

from __future__ import annotations

import pytest

from dscache.install.parts import (
    PartPolicy,
    coalesce,
    missing,
    part_size,
    prefix_end,
    split,
    streams_per_item,
)

MIB = 1 << 20
POLICY = PartPolicy(streams=32, min_part=8 * MIB, max_part=64 * MIB)


def test_the_stream_budget_is_shared_by_the_items_in_flight() -> None:
    assert streams_per_item(32, 4, 60) == 8
    assert streams_per_item(32, 4, 2) == 16  # two items left: each may open more
    assert streams_per_item(3, 4, 60) == 1


def test_part_sizes_follow_the_object_and_the_streams() -> None:
    assert part_size(512 * MIB, 8, POLICY) == 16 * MIB  # about four parts per stream
    assert part_size(50_000_000, 8, POLICY) == 8 * MIB  # never under the smallest part
    assert part_size(16 * 1024 * MIB, 8, POLICY) == 64 * MIB  # nor over the largest
    assert part_size(15 * MIB, 8, POLICY) is None  # under two parts: one stream
    assert part_size(512 * MIB, 1, POLICY) is None  # one stream allowed


def test_split_cuts_each_range_into_parts() -> None:
    assert split([(0, 10), (20, 25)], 4) == [(0, 4), (4, 8), (8, 10), (20, 25)]


def test_a_rest_under_half_a_part_joins_the_last_part() -> None:
    """A request of a few KB costs a first-byte wait for nothing (a newcomer saw 1,690-byte GETs)."""
    size = 8 * MIB
    assert split([(0, 3 * size + 1690)], size) == [(0, size), (size, 2 * size), (2 * size, 3 * size + 1690)]
    assert split([(0, 2 * size + size // 2)], size)[-1] == (2 * size, 2 * size + size // 2)  # half stays
    assert split([(0, 1690)], size) == [(0, 1690)]


def test_an_archive_is_cut_into_parts_its_read_ahead_holds_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of an object consumed in order are no longer than what a part behind the front may buffer:
    a longer one would stall on its full buffer until the front is taken, its connection idle."""
    monkeypatch.delenv("DSCACHE_PART_SIZE", raising=False)
    ordered = PartPolicy.from_env().ordered()
    assert part_size(50_000_000, 8, ordered) == 4 * MIB == ordered.read_ahead
    assert part_size(2 * 1024 * MIB, 8, ordered) == 4 * MIB  # never longer, whatever the object
    assert part_size(50_000_000, 8, PartPolicy.from_env()) == 8 * MIB  # a file's parts: as before
    monkeypatch.setenv("DSCACHE_PART_SIZE", "16Mi")  # the user's part size, buffered whole
    ordered = PartPolicy.from_env().ordered()
    assert part_size(200 * MIB, 8, ordered) == 16 * MIB == ordered.read_ahead
    monkeypatch.setenv("DSCACHE_PART_SIZE", "1Mi")  # smaller parts: a read-ahead of at least 4 MiB
    ordered = PartPolicy.from_env().ordered()
    assert (part_size(50_000_000, 8, ordered), ordered.read_ahead) == (1 * MIB, 4 * MIB)


def test_the_buffers_of_an_archive_s_parts_stay_under_a_gib_in_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every part behind the front is buffered whole: a part size the user chose is cut so that all
    streams together buffer at most 1 GiB (32 streams x 1Gi parts would be 32 GiB of memory)."""
    monkeypatch.setenv("DSCACHE_PART_SIZE", "1Gi")
    assert PartPolicy.from_env().ordered().read_ahead == 32 * MIB  # 1 GiB / 32 streams
    assert PartPolicy.from_env().min_part == 1024 * MIB  # a file's parts land on disk: as asked
    monkeypatch.setenv("DSCACHE_STREAMS", "256")
    assert PartPolicy.from_env().ordered().read_ahead == 4 * MIB  # never under READ_AHEAD


def test_missing_ranges_of_a_partial_file() -> None:
    done = [(4, 8), (0, 4), (12, 16)]
    assert coalesce(done) == [(0, 8), (12, 16)]
    assert missing(done, 0, 20) == [(8, 12), (16, 20)]
    assert missing([], 0, 20) == [(0, 20)]
    assert prefix_end(done, 0) == 8
    assert prefix_end([(4, 8)], 0) == 0
