"""Byte sizes as users write them (Kubernetes quantities) and as they read them (binary units).

`parse_size` follows the Kubernetes quantity grammar (k8s.io/apimachinery `resource.Quantity`), so a
size means the same on the command line as in a manifest or an annotation:

- suffixes are case-sensitive: `k M G T P E` are powers of 1000 (lowercase `k` only), `Ki Mi Gi Ti Pi
  Ei` powers of 1024, `e<N>`/`E<N>` a decimal exponent (`1e3`), and `m`, `u`, `n` are milli, micro, nano;
- a size must come out as a whole, non-negative number of bytes: `500m` is half a byte and is refused
  with a hint (`500M` or `500Mi`), as are `1.5` and `-1`;
- one extension: a `B` after a binary suffix (`64MiB`), which cannot be misread. Decimal forms with `B`
  (`500MB`, `2GB`, `1kB`) are refused, as Kubernetes refuses them: `MB` means 10^6 to some tools and
  2^20 to others, and the message says which spelling gives which.
"""

from __future__ import annotations

import re
from fractions import Fraction

_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<binary>[KMGTPE]i)B?|(?P<decimal>[numkMGTPE])|[eE](?P<exponent>[+-]?[0-9]+))?"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_MAX_EXPONENT = 30  # beyond any byte count; bounds the arithmetic on hostile input
MAX_BYTES = 2**63 - 1  # a Kubernetes quantity is an int64
_LOOKALIKE = re.compile(r"([0-9.]+)\s*([kmgtpe])(i?)(b?)", re.IGNORECASE)
_GUIDE = "bytes, or a Kubernetes quantity such as 500Mi (2^20), 20G (10^9), 1.5Gi, 1e6"


def _hint(text: str) -> str:
    """What the user probably meant, for a size in a spelling Kubernetes does not take."""
    m = _LOOKALIKE.fullmatch(text)
    if m is None:
        return f"use {_GUIDE}"
    number, letter, binary, byte = m.group(1), m.group(2).upper(), m.group(3), m.group(4)
    power = "KMGTPE".index(letter) + 1
    decimal = "k" if letter == "K" else letter
    spellings = f"write {number}{decimal} (10^{3 * power}) or {number}{letter}i (2^{10 * power})"
    if byte and not binary:
        return f"{m.group(2)}B is ambiguous (powers of 1000 or 1024); {spellings}"
    return f"{spellings}; suffixes are case-sensitive"


def parse_size(text: str) -> int:
    """Bytes in a Kubernetes quantity (`12345`, `500Mi`, `64MiB`, `20G`, `2k`, `1.5Gi`, `1e3`).

    Raises ValueError naming the text: bad syntax (with the likely intended spelling), a negative
    value, a fraction of a byte (`500m` is 0.5 bytes), or more than 2^63-1 bytes.
    """
    stripped = text.strip()
    m = _QUANTITY.fullmatch(stripped)
    if m is None:
        raise ValueError(f"size {text!r}: {_hint(stripped)}")
    value = Fraction(m.group("number"))
    if m.group("binary"):
        value *= 1024 ** _BINARY[m.group("binary")]
    else:
        exponent = _DECIMAL[m.group("decimal")] if m.group("decimal") else int(m.group("exponent") or 0)
        if abs(exponent) > _MAX_EXPONENT:
            raise ValueError(f"size {text!r}: exponent out of range")
        value *= Fraction(10) ** exponent
    if m.group("sign") == "-" and value != 0:
        raise ValueError(f"size {text!r} is negative")
    if value.denominator != 1:
        note = " ('m' means milli, 1/1000)" if m.group("decimal") == "m" else ""
        raise ValueError(
            f"size {text!r} is {float(value):g} bytes{note}, not a whole number of bytes: "
            + (_hint(m.group("number") + "M") if m.group("decimal") == "m" else f"use {_GUIDE}")
        )
    if value > MAX_BYTES:
        raise ValueError(f"size {text!r} is more than 2^63-1 bytes")
    return int(value)


MIN_PART_SIZE = 64 << 10
"""Smallest `DSCACHE_PART_SIZE`: an archive is fetched in parts of exactly that size, so `16` (meant
as 16 MiB) would cost a GET per 16 bytes, a 10 MiB archive 655,360 requests (minutes, or a hang)."""


def parse_count(text: str) -> int:
    """A count of things (streams, attempts) as a whole number >= 1: `32`. Not a size: `8Mi` or `1e3`
    is refused, saying that the value is a count. Raises ValueError saying why not."""
    stripped = text.strip()
    if not stripped.isdigit():
        size = _QUANTITY.fullmatch(stripped)
        note = " (a count, not a size)" if size is not None and size.group("number") != stripped else ""
        raise ValueError(f"must be a whole number >= 1{note}")
    value = int(stripped)
    if value < 1:
        raise ValueError("must be a whole number >= 1")
    return value


MAX_STREAMS = 256
"""Most streams `DSCACHE_STREAMS` may give one install (all jobs together). Each stream is a thread and
a connection (a file descriptor, under the soft limit of 1024 many containers get), and each part not
yet at an archive's front buffers up to 4 MiB (`parts.READ_AHEAD`: 1 GiB at 256). At the 85-90 MB/s
per connection S3's performance guidelines plan for, 256 streams make ~22 GB/s, more than a
100 Gbit/s link carries; and with parts of 8 MiB at that speed, ~10 GETs per second each, ~2,600 in
all, under S3's 5,500 GET/s per prefix, which 1024 streams would pass (503 SlowDown). It is also
s5cmd's default number of workers."""
MAX_PART_SIZE = 1 << 30
"""Largest `DSCACHE_PART_SIZE` (the smallest part, 1Gi). A part is what a kill loses per stream (only
finished parts are recorded for a resume), and a larger one saves nothing: at 100 MB/s a part of 1 GiB
takes ~10 s, so even a 1 s wait for its first byte is a tenth of it at most. Objects under two parts
go as one stream; `DSCACHE_STREAMS=1` sends every object as one stream."""


def parse_streams(text: str) -> int:
    """`DSCACHE_STREAMS`: a count from 1 to `MAX_STREAMS`. Raises ValueError saying why not."""
    value = parse_count(text)
    if value > MAX_STREAMS:
        raise ValueError(
            f"must be at most {MAX_STREAMS}: each stream is a thread and a connection, and {MAX_STREAMS} "
            "already fill a 100 Gbit/s link"
        )
    return value


def parse_part_size(text: str) -> int:
    """`DSCACHE_PART_SIZE`: a size from `MIN_PART_SIZE` (64Ki) to `MAX_PART_SIZE` (1Gi). Raises
    ValueError saying why not."""
    value = parse_size(text)
    if value < 1:
        raise ValueError(f"size {text!r} must be at least 1 byte")
    if value < MIN_PART_SIZE:
        raise ValueError(f"a part of {value} bytes is under the smallest part, 64Ki: give a size such as 8Mi")
    if value > MAX_PART_SIZE:
        raise ValueError(
            "must be at most 1Gi: larger parts only lose more to a kill (DSCACHE_STREAMS=1 fetches "
            "every object as one stream)"
        )
    return value


def format_size(n: float) -> str:
    """Human-readable binary size for messages and tables: `1023 B`, `1.5 KiB`, `3.0 GiB`."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    size, i = float(n), 0
    while abs(size) >= 1024 and i < len(units) - 1:
        size /= 1024
        i += 1
    return f"{int(n)} B" if i == 0 else f"{size:.1f} {units[i]}"


def format_rate(bytes_per_second: float) -> str:
    """A transfer rate in the same binary units: `512 B/s`, `12.5 MiB/s`."""
    return f"{format_size(bytes_per_second)}/s"


DEFAULT_ZSTD_WINDOW = 1 << 31
"""zstd's largest window (ZSTD_WINDOWLOG_MAX = 31 on 64-bit): the default bound of what an archive
may need to be decoded (`zstd --long=31`)."""
MIN_ZSTD_WINDOW = 1 << 10  # zstd's smallest window (ZSTD_WINDOWLOG_ABSOLUTEMIN)
ZSTD_WINDOW_ENV = "DSCACHE_ZSTD_MAX_WINDOW"


def parse_zstd_window(text: str) -> int:
    """The zstd window bound `text` (a size, e.g. `512Mi`) in bytes, between 1 KiB and 2 GiB.

    Raises ValueError saying why not."""
    value = parse_size(text)
    if not MIN_ZSTD_WINDOW <= value <= DEFAULT_ZSTD_WINDOW:
        raise ValueError("must be between 1Ki and 2Gi")
    return value
