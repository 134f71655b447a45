"""The pure decisions of fetching in parts: how many streams an item gets, the part size, and which
ranges of a partial file are still missing."""

from __future__ import annotations

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
    assert split([(0, 10), (20, 25)], 4) == [(0, 4), (4, 8), (8, 10), (20, 24), (24, 25)]


def test_missing_ranges_of_a_partial_file() -> None:
    done = [(4, 8), (0, 4), (12, 16)]
    assert coalesce(done) == [(0, 8), (12, 16)]
    assert missing(done, 0, 20) == [(8, 12), (16, 20)]
    assert missing([], 0, 20) == [(0, 20)]
    assert prefix_end(done, 0) == 8
    assert prefix_end([(4, 8)], 0) == 0
