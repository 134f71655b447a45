"""Byte sizes as users write them (Kubernetes quantities and their `B` forms) and as they read them."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kmgtp]?)(i?)(b?)$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(text: str) -> int:
    """Bytes in `12345`, `500Mi`/`500MiB` (binary) or `20G`/`20GB`/`2k` (decimal). Raises ValueError."""
    m = _SIZE.match(text.strip())
    if m is None or (m.group(3) and not m.group(2)):
        raise ValueError(f"size {text!r}: use a number of bytes or e.g. 500Mi, 64MiB, 20G, 2GB")
    base = 1024 if m.group(3) else 1000
    return int(float(m.group(1)) * base ** _POWERS[m.group(2).lower()])


def format_size(n: float) -> str:
    """Human-readable binary size for messages and tables: `1023 B`, `1.5 KiB`, `3.0 GiB`."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    size, i = float(n), 0
    while abs(size) >= 1024 and i < len(units) - 1:
        size /= 1024
        i += 1
    return f"{int(n)} B" if i == 0 else f"{size:.1f} {units[i]}"
