"""Safe streaming extraction of `.tar.zst` archives.

Why hand-written around libarchive: Python's tarfile spends most of its time per member in Python
and cannot reach the `zstd -dc | tar -x` floor on 2 cores, while libarchive decompresses, parses and
writes in C (archives extract in parallel worker processes, see `workers.py`). libarchive's own
`SECURE_*` flags cannot name the offending member, do not cover devices, fifos or symlinks that
point outside the version, and its symlink guard costs an lstat per path component per member. So
every header is checked here first (`check_member`, pure, plus the set of symlinks this archive
created, which no later member may pass through or replace) and the first violation aborts the
archive with a message naming it. Writes go only below `dest`. Symlink chains are checked physically
once the version is assembled (`links_escaping`).
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Iterable, Iterator
from ctypes import addressof, byref, c_char_p, c_longlong, c_size_t, c_void_p, memmove, sizeof
from dataclasses import dataclass, field
from pathlib import Path

try:
    from libarchive import ffi
except (OSError, AttributeError) as _err:  # no library at all, or one that is not libarchive
    raise ImportError(
        f"the libarchive system library cannot be loaded ({_err}): install it (Debian/Ubuntu: "
        "apt-get install libarchive13; Fedora: dnf install libarchive; macOS: brew install libarchive) "
        "or set LIBARCHIVE to the path of libarchive.so / libarchive.dylib"
    ) from None
from libarchive.entry import ArchiveEntry
from libarchive.exception import ArchiveError
from libarchive.extract import EXTRACT_SECURE_NODOTDOT, EXTRACT_TIME, new_archive_write_disk
from libarchive.read import NO_CLOSE_CB, NO_OPEN_CB, READ_CALLBACK, new_archive_read

from dscache.cachepaths import METADATA_FILES

WRITE_FLAGS = EXTRACT_TIME | EXTRACT_SECURE_NODOTDOT
FILE_MODE = 0o444
DIR_MODE = 0o755  # made read-only when the version is published
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM})


class ArchiveRejectedError(Exception):
    """An archive is unsafe or corrupt; the message names the archive and the member."""

    def __init__(self, archive: str, member: str | None, reason: str) -> None:
        where = f"member {member!r} of {archive}" if member is not None else archive
        super().__init__(f"{where}: {reason}")
        self.archive = archive
        self.member = member
        self.reason = reason

    def __reduce__(self) -> tuple[type[ArchiveRejectedError], tuple[str, str | None, str]]:
        return (type(self), (self.archive, self.member, self.reason))  # raised in worker processes


@dataclass
class Extracted:
    """What one archive put on disk: regular files with sizes, symlinks with targets, directories."""

    files: dict[str, int] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)


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
    if name in METADATA_FILES:
        return "name reserved for dscache metadata"
    if kind == "other":
        return "device, fifo or socket not allowed"
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


def through_symlink(name: str, kind: str, symlinks: set[str]) -> str | None:
    """Why `name` may not be written given the symlinks already extracted (None if it may)."""
    if name in symlinks and kind != "symlink":
        return "replaces a symlink of the same archive"
    pos = name.find("/")
    while pos != -1:
        if name[:pos] in symlinks:
            return f"path goes through symlink {name[:pos]!r}"
        pos = name.find("/", pos + 1)
    return None


def links_escaping(root: Path, links: Iterable[str]) -> list[str]:
    """Symlinks below `root` whose fully resolved target lies outside `root` (chains included)."""
    real_root = os.path.realpath(root)
    bad = []
    for rel in links:
        target = os.path.realpath(os.path.join(root, rel))
        if target != real_root and not target.startswith(real_root + os.sep):
            bad.append(rel)
    return bad


def _kind(entry: ArchiveEntry) -> str:
    if entry.isdir:
        return "dir"
    if entry.issym:
        return "symlink"
    if entry.islnk:
        return "hardlink"
    if entry.isreg:
        return "file"
    return "other"


def extract_stream(chunks: Iterable[bytes], dest: Path, archive: str) -> Extracted:
    """Extract the `.tar.zst` byte stream `chunks` below `dest` (which must exist).

    Raises ArchiveRejectedError for unsafe members and corrupt data; errors of `chunks` itself
    (e.g. a failed download) propagate unchanged.
    """
    source: Iterator[bytes] = iter(chunks)
    holder: list[c_char_p] = []
    pending: list[BaseException] = []

    def read_cb(_archive_p: int, _ctx: int, ptrptr: int) -> int:
        try:
            chunk = next((c for c in source if c), b"")  # libarchive reads an empty chunk as the end
        except BaseException as exc:  # surfaced after libarchive returns
            pending.append(exc)
            return -1
        view = c_char_p(chunk)  # points into `chunk` and keeps it alive until the next call
        holder[:] = [view]
        # Not `cast(view, c_void_p)`: cast ties its source into a reference cycle, so every chunk of
        # the stream stayed in memory until a garbage collection (100 MB held for a 200 MB file).
        memmove(ptrptr, addressof(view), sizeof(c_void_p))
        return len(chunk)

    read_fn = READ_CALLBACK(read_cb)
    root = os.fsencode(dest)
    result = Extracted()
    symlinks: set[str] = set()
    buf, size, offset = c_void_p(), c_size_t(), c_longlong()
    try:
        with new_archive_read("tar", "zstd") as read_p, new_archive_write_disk(WRITE_FLAGS) as write_p:
            ffi.read_open(read_p, None, NO_OPEN_CB, read_fn, NO_CLOSE_CB)
            entry = ArchiveEntry(header_codec="utf-8")
            entry_p = entry._entry_p
            while ffi.read_next_header2(read_p, entry_p) != ffi.ARCHIVE_EOF:
                raw_name = entry.pathname
                name = normalize_member(raw_name)
                if name is None:
                    continue
                kind = _kind(entry)
                link = entry.linkpath if kind in ("symlink", "hardlink") else None
                reason = check_member(name, kind, link) or through_symlink(name, kind, symlinks)
                if reason is not None:
                    raise ArchiveRejectedError(archive, raw_name, reason)
                entry.pathname = root + b"/" + os.fsencode(name)
                if kind == "hardlink":
                    assert link is not None
                    target = normalize_member(link) or ""
                    reason = through_symlink(target, "file", symlinks)
                    if target in symlinks:
                        reason = "hardlink to a symlink"
                    if reason is not None:
                        raise ArchiveRejectedError(archive, raw_name, f"hardlink target {reason}")
                    entry.linkpath = root + b"/" + os.fsencode(target)
                    result.files[name] = result.files.get(target, 0)
                elif kind == "file":
                    entry.perm = FILE_MODE
                    result.files[name] = entry.size or 0
                elif kind == "dir":
                    entry.perm = DIR_MODE
                    result.dirs.append(name)
                else:
                    assert link is not None
                    result.links[name] = link
                    symlinks.add(name)
                ffi.write_header(write_p, entry_p)
                if kind == "file":
                    while (
                        ffi.read_data_block(read_p, byref(buf), byref(size), byref(offset)) != ffi.ARCHIVE_EOF
                    ):
                        ffi.write_data_block(write_p, buf, size, offset)
                ffi.write_finish_entry(write_p)
    except ArchiveError as err:
        if pending:
            raise pending[0] from None
        if err.errno in _DISK_ERRNOS:
            raise OSError(err.errno, os.strerror(err.errno), str(dest)) from None
        member = None
        try:
            member = entry.pathname
        except Exception:  # the entry may not be readable after a corrupt header
            member = None
        raise ArchiveRejectedError(archive, member, f"corrupt or unreadable archive: {err.msg}") from None
    if pending:
        raise pending[0]
    return result
