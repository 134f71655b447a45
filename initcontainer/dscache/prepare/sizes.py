"""Byte sizes on the command line, written like Kubernetes quantities (`500Mi`, `20G`, `1073741824`)."""

from __future__ import annotations

_UNITS = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}


def parse_size(text: str) -> int:
    """Bytes in `text`: a number with an optional Kubernetes suffix (decimal k/M/G/T/P, binary Ki..Pi)."""
    stripped = text.strip()
    number = stripped.rstrip("kKMGTPi")
    unit = stripped[len(number) :]
    if unit not in _UNITS or not number:
        raise ValueError(f"size {text!r} must be a number with an optional suffix k, M, G, T, Ki, Mi, Gi, Ti")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"size {text!r} is not a number") from None
    if value < 0:
        raise ValueError(f"size {text!r} must not be negative")
    return int(value * _UNITS[unit])


def format_size(n: int) -> str:
    """Human-readable binary size for messages and tables."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    size, i = float(n), 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024
        i += 1
    return f"{n} B" if i == 0 else f"{size:.1f} {units[i]}"
