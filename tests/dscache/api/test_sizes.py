"""Sizes on the command line and in messages."""

from __future__ import annotations

import pytest

from dscache.api.sizes import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1073741824", 2**30), ("500Mi", 500 * 2**20), ("20G", 20 * 10**9), ("1.5Ki", 1536), ("2k", 2000)],
)
def test_parse_size_accepts_kubernetes_quantities(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "Gi", "10 GB", "ten", "-1", "5X"])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_format_size_is_human_readable() -> None:
    assert [format_size(n) for n in (0, 1023, 1536, 3 * 2**30)] == ["0 B", "1023 B", "1.5 KiB", "3.0 GiB"]
