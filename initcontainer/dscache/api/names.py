"""Safe names for data types, sources and versions, and the `DT/SRC=VER` syntax.

Every name ends up as a path component on a shared volume, so the rules are strict: no leading dot
(no `.`, `..` or hidden files), a conservative character set, bounded length. A source may have inner
`/` (e.g. `objaverse/part1`); each of its segments follows the same rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dscache.errors import InvalidInputError

MAX_SEGMENT = 128
MAX_SOURCE = 255
SEGMENT_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._+=@-]{0,127}"
SOURCE_PATTERN = rf"{SEGMENT_PATTERN}(/{SEGMENT_PATTERN})*"
_SEGMENT = re.compile(rf"^{SEGMENT_PATTERN}$")
_SOURCE = re.compile(rf"^{SOURCE_PATTERN}$")
ALLOWED = "ASCII letters and digits (A-Z, a-z, 0-9) and the characters . _ + = @ -"
"""The characters of a safe name, in words: no spaces, no letters outside ASCII (`ü`), no '/'."""


class NameError_(InvalidInputError):
    """A data type, source or version is not a safe path component."""


def is_safe_segment(value: str) -> bool:
    """Pure: whether `value` is a safe single path component (`check_segment` accepts it)."""
    return _SEGMENT.match(value) is not None


def check_segment(value: str, what: str) -> str:
    """Return `value` if it is a safe single path component, else raise naming `what`."""
    if not is_safe_segment(value):
        raise NameError_(
            f"{what} {value!r} is not a safe name: use only {ALLOWED} "
            f"(not starting with '.' or '-', at most {MAX_SEGMENT} characters, no '/')"
        )
    return value


def check_source(value: str, what: str = "source") -> str:
    """Return `value` if it is a safe source (segments joined by inner '/'), else raise."""
    if len(value) > MAX_SOURCE or not _SOURCE.match(value):
        raise NameError_(
            f"{what} {value!r} is not a safe name: '/'-separated segments of only {ALLOWED} (no "
            f"segment starting with '.' or '-', no '/' at the ends, at most {MAX_SOURCE} characters)"
        )
    return value


@dataclass(frozen=True, order=True)
class VersionKey:
    """One cached version: `<data_type>/<source>/<version>` on the volume and on the remote."""

    data_type: str
    source: str
    version: str

    def __post_init__(self) -> None:
        check_segment(self.data_type, "data type")
        check_source(self.source)
        check_segment(self.version, "version")

    @property
    def rel(self) -> str:
        """The relative path of the version, as on the cache volume and the remote."""
        return f"{self.data_type}/{self.source}/{self.version}"

    @property
    def slot(self) -> str:
        """`<data_type>/<source>`: the stable, version-free path a pod sees."""
        return f"{self.data_type}/{self.source}"

    def __str__(self) -> str:
        return f"{self.data_type}/{self.source}={self.version}"


def parse_version_arg(arg: str, flag: str = "--version") -> VersionKey:
    """Parse `DT/SRC=VER` (SRC may contain '/'; the first path segment is DT); raises NameError_
    naming `flag` (the option or field the text came from)."""
    slot, sep, version = arg.partition("=")
    data_type, slash, source = slot.partition("/")
    if not sep or not slash or not data_type or not source or not version:
        raise NameError_(f"{flag} {arg!r} must look like DATA_TYPE/SOURCE=VERSION")
    return VersionKey(data_type, source, version)
