"""What a version may hold: the rules every member name (archive member or plain file) must follow.

A version directory is written by extraction and by plain copies (the `files` layout); both check each
name here first, so nothing lands outside `<dt>/<src>/<ver>/` or over dscache's own records. Pure.
"""

from __future__ import annotations

import posixpath

from dscache.store.paths import METADATA_FILES

CONTROL_RULE = (
    "control characters (U+0000-U+001F, U+007F: line breaks, tabs, escapes) are not allowed in names"
)
"""The one rule for control characters in a version's names: install (files and archive members) and
publish refuse them alike, so a name never spans lines in a listing, a log or `verify`'s output."""


def control_character(name: str) -> str | None:
    """Pure: the first control character of `name`, escaped (`\\n`), or None."""
    return next((repr(c)[1:-1] for c in name if ord(c) < 32 or ord(c) == 127), None)


def shown_name(name: str) -> str:
    """Pure: `name` as one printable line: control and other non-printable characters escaped as
    Python writes them (`a\\nb`), everything else (`ünï`, spaces) as is."""
    return name if name.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def normalize_member(name: str) -> str | None:
    """Member name relative to the version root, or None for the root itself (`./`)."""
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    return name or None


def check_member(name: str, kind: str, link: str | None) -> str | None:
    """Why a member may not be extracted (None if it may). `kind`: file, dir, symlink, hardlink, other."""
    if name.startswith("/"):
        return "absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "path contains '..'"
    if "" in parts or "\x00" in name:
        return "malformed path"
    control = control_character(name)
    if control is not None:
        return f"name holds the control character {control}: {CONTROL_RULE}"
    if name in METADATA_FILES:
        return "name reserved for dscache metadata"
    if kind == "other":
        return "device, fifo or socket not allowed"
    if kind in ("symlink", "hardlink") and not link:
        return f"{kind} without a target"
    if kind == "symlink":
        assert link is not None
        if link.startswith("/"):
            return f"symlink to absolute path {link!r}"
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
        if resolved == ".." or resolved.startswith("../"):
            return f"symlink {link!r} escapes the version directory"
    if kind == "hardlink":
        assert link is not None
        target = normalize_member(link)
        if target is None or check_member(target, "file", None) is not None:
            return f"hardlink to {link!r} escapes the version directory"
    return None
