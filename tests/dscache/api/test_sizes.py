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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500M", 500 * 10**6),
        ("500Mi", 500 * 2**20),
        ("64MiB", 64 * 2**20),  # the one extension: B after a binary suffix
        ("1e3", 1000),
        ("1E6", 10**6),
        ("1.5Gi", 3 * 2**29),
        ("2k", 2000),
        ("0.5Ki", 512),
        (".5Ki", 512),
        ("2000m", 2),  # milli-bytes that make whole bytes
        ("1E", 10**18),  # exa, as in Kubernetes
        ("+7", 7),
        ("0", 0),
    ],
)
def test_sizes_follow_kubernetes_quantity_rules(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "500m",
            "size '500m' is 0.5 bytes ('m' means milli, 1/1000), not a whole number of bytes: "
            "write 500M (10^6) or 500Mi (2^20)",
        ),
        ("1500m", "is 1.5 bytes"),
        ("1.5", "is 1.5 bytes"),
        ("1u", "is 1e-06 bytes"),
        (
            "500MB",
            "size '500MB': MB is ambiguous (powers of 1000 or 1024); write 500M (10^6) or 500Mi (2^20)",
        ),
        ("2GB", "write 2G (10^9) or 2Gi (2^30)"),
        ("1kB", "kB is ambiguous"),
        ("500K", "write 500k (10^3) or 500Ki (2^10); suffixes are case-sensitive"),
        ("1gib", "write 1G (10^9) or 1Gi (2^30); suffixes are case-sensitive"),
        ("500mi", "write 500M (10^6) or 500Mi (2^20)"),
        ("-5Gi", "size '-5Gi' is negative"),
        ("9Ei", "is more than 2^63-1 bytes"),
        ("1e99", "exponent out of range"),
    ],
)
def test_sizes_kubernetes_would_refuse_or_misread_are_refused_with_the_fix(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_size(text)
    assert message in str(err.value), str(err.value)
