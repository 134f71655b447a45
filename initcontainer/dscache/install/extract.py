"""Safe streaming extraction of `.tar.zst` archives.

Why hand-written around libarchive: Python's tarfile spends most of its time per member in Python
and cannot reach the `zstd -dc | tar -x` floor on 2 cores, while libarchive parses and writes in C
(archives extract in parallel worker processes, see `workers.py`). libarchive's own `SECURE_*` flags
cannot name the offending member, do not cover devices, fifos or symlinks that point outside the
version, and its symlink guard costs an lstat per path component per member. So every header is
checked here first (`check_member`, pure, plus `PathKinds`: what this archive already made of each
path, so that no member passes through or replaces a symlink or a file, or turns a file into a
directory) and the first violation aborts the archive with a message naming it. Writes go only below
`dest`. Symlink chains are checked physically once the version is assembled (`links_escaping`). The
zstd layer is decoded by `zstdstream` (a stated bound on the window, which libarchive cannot raise).
The result and error types and the pure checks are in `extracted.py`, which loads neither library:
the installer's parent process imports this module only on a thread during its plan (`preload.py`).

Names are bytes: a member's name on disk is exactly the bytes of its header, whatever the locale, as
`tar -x` does. libarchive converts names from pax headers (UTF-8) to the locale's charset and
normalises them to Unicode NFC on the way (`cafe` + U+0301 became `café`), unless that conversion
fails, in which case it keeps the header's bytes. So headers are read under the "C" locale of the
calling thread (ASCII: every non-ASCII name keeps its bytes; ASCII names have nothing to normalise),
and names are read and written with the byte variants (`archive_entry_pathname`,
`archive_entry_copy_pathname`), never the wide or UTF-8 ones. In Python (records, messages) a name
is its bytes decoded as UTF-8 with `surrogateescape`: names that are not UTF-8 (latin-1 `caf\\xe9`)
round-trip through the JSON records as lone surrogates (`"caf\\udce9"`) and reach the filesystem
unchanged through `os` calls, which encode with the filesystem encoding (UTF-8 in Python 3.7+ on
Linux, except under a legacy 8-bit locale; set PYTHONUTF8=1 there).

Modes: files keep their execute bits as `r-x` for everyone, or are `r--` for everyone (`modes.py`);
directories are `rwxr-xr-x` until the version is published, then read-only.
"""

from __future__ import annotations

import errno
import hashlib
import locale
import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from ctypes import (
    CDLL,
    addressof,
    byref,
    c_char,
    c_char_p,
    c_int,
    c_longlong,
    c_size_t,
    c_void_p,
    create_string_buffer,
    memmove,
    sizeof,
)
from pathlib import Path
from typing import Any

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
from libarchive.extract import EXTRACT_PERM, EXTRACT_SECURE_NODOTDOT, EXTRACT_TIME, new_archive_write_disk
from libarchive.read import NO_CLOSE_CB, NO_OPEN_CB, READ_CALLBACK, new_archive_read

from dscache.install.extracted import (
    DIR_MODE,
    ArchiveRejectedError,
    Extracted,
    RejectCause,
    decode_name,
    encode_name,
    hardlink_target_problem,
    place_member,
)
from dscache.install.pathkinds import PathKinds
from dscache.install.zstdstream import WindowLimitError, ZstdReader, ZstdStreamError, max_window
from dscache.store.members import check_member, normalize_member
from dscache.store.modes import file_mode, is_executable

# EXTRACT_PERM: the modes set below exactly, whatever the umask (libarchive skips the chmod when the
# umask already gives them).
WRITE_FLAGS = EXTRACT_TIME | EXTRACT_SECURE_NODOTDOT | EXTRACT_PERM
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM})
_BUFFER = 1 << 20  # decompressed bytes handed to libarchive per read


def _zstd_cause(err: ZstdStreamError) -> RejectCause:
    return "limit" if isinstance(err, WindowLimitError) else "corrupt"


_libc = CDLL(None, use_errno=True)
_libc.newlocale.argtypes = [c_int, c_char_p, c_void_p]
_libc.newlocale.restype = c_void_p
_libc.uselocale.argtypes = [c_void_p]
_libc.uselocale.restype = c_void_p
_C_LOCALE: list[int] = []  # created once, never freed


@contextmanager
def c_locale() -> Iterator[None]:
    """Run the block with this thread's LC_CTYPE set to "C" (uselocale(3): other threads unaffected)."""
    if not _C_LOCALE:
        loc = _libc.newlocale(1 << locale.LC_CTYPE, b"C", None)
        if not loc:
            raise OSError(errno.ENOMEM, "newlocale(LC_CTYPE, C) failed")
        _C_LOCALE.append(loc)
    previous = _libc.uselocale(_C_LOCALE[0])
    try:
        yield
    finally:
        _libc.uselocale(previous)


# Its own function object (CDLL item access makes a new one): libarchive-c's shared one logs every
# warning, and "Pathname can't be converted" is what keeps a name's bytes here (see the docstring).
_next_header = ffi.libarchive["archive_read_next_header2"]
_next_header.argtypes = [c_void_p, c_void_p]
_next_header.restype = c_int


def _read_header(read_p: int, entry_p: int) -> bool:
    """Read the next header into `entry_p`; False at the end of the archive."""
    ret: int = _next_header(read_p, entry_p)
    if ret == ffi.ARCHIVE_EOF:
        return False
    if ret < ffi.ARCHIVE_WARN:
        raise ffi.archive_error(read_p, ret)
    return True


def _kind(entry_p: int) -> str:
    if ffi.entry_hardlink(entry_p) is not None:
        return "hardlink"
    filetype = ffi.entry_filetype(entry_p)
    if stat.S_ISDIR(filetype):
        return "dir"
    if stat.S_ISLNK(filetype):
        return "symlink"
    if stat.S_ISREG(filetype):
        return "file"
    return "other"


def _link_target(entry_p: int, kind: str) -> str | None:
    if kind not in ("hardlink", "symlink"):
        return None
    raw = ffi.entry_hardlink(entry_p) if kind == "hardlink" else ffi.entry_symlink(entry_p)
    return None if raw is None else decode_name(raw)


def extract_stream(chunks: Iterable[bytes], dest: Path, archive: str) -> Extracted:
    """Extract the `.tar.zst` byte stream `chunks` below `dest` (which must exist).

    Raises ArchiveRejectedError for unsafe members, kind conflicts, corrupt data and zstd windows above
    the bound; errors of `chunks` itself (e.g. a failed download) propagate unchanged.
    """
    try:
        decoded = ZstdReader(chunks, max_window())
    except ZstdStreamError as err:
        raise ArchiveRejectedError(archive, None, str(err), cause=_zstd_cause(err)) from None
    buffer = create_string_buffer(_BUFFER)
    view = memoryview(buffer).cast("B")
    address = c_void_p(addressof(buffer))
    pending: list[BaseException] = []
    current: list[str] = []  # the member being extracted, for messages

    def read_cb(_archive_p: int, _ctx: int, ptrptr: int) -> int:
        try:
            count = decoded.readinto(view)
        except BaseException as exc:  # surfaced after libarchive returns
            pending.append(exc)
            return -1
        memmove(ptrptr, addressof(address), sizeof(c_void_p))
        return count

    try:
        with c_locale():
            result = _extract(READ_CALLBACK(read_cb), dest, archive, current)
            while decoded.readinto(view):  # the zstd stream after tar's end: checksums, truncation
                pass
    except ZstdStreamError as err:
        raise ArchiveRejectedError(archive, None, str(err), cause=_zstd_cause(err)) from None
    except ArchiveError as err:
        member = current[0] if current else None
        if pending:
            if isinstance(pending[0], ZstdStreamError):
                raise ArchiveRejectedError(
                    archive, member, str(pending[0]), cause=_zstd_cause(pending[0])
                ) from None
            raise pending[0] from None
        if err.errno in _DISK_ERRNOS:
            raise OSError(err.errno, os.strerror(err.errno), str(dest)) from None
        raise ArchiveRejectedError(
            archive, member, f"corrupt or unreadable archive: {err.msg}", cause="corrupt"
        ) from None
    return result


def _extract(read_fn: Any, dest: Path, archive: str, current: list[str]) -> Extracted:
    """The libarchive loop of `extract_stream`, reading plain tar from `read_fn`; call under `c_locale`.

    `current` is set to the name of the member being extracted.
    """
    root = os.fsencode(dest)
    result = Extracted()
    executable: set[str] = set()
    kinds = PathKinds()
    buf, size, offset = c_void_p(), c_size_t(), c_longlong()
    with new_archive_read("tar", "none") as read_p, new_archive_write_disk(WRITE_FLAGS) as write_p:
        ffi.read_open(read_p, None, NO_OPEN_CB, read_fn, NO_CLOSE_CB)
        entry = ArchiveEntry()
        entry_p = entry._entry_p
        while _read_header(read_p, entry_p):
            shown = decode_name(ffi.entry_pathname(entry_p) or b"")
            member = normalize_member(shown)
            if member is None:
                continue
            current[:] = [shown]
            kind = _kind(entry_p)
            link = _link_target(entry_p, kind)
            reason = check_member(member, kind, link)
            if reason is None and kind == "hardlink":
                reason = hardlink_target_problem(kinds, member, normalize_member(link or "") or "")
            if reason is None:
                reason = place_member(kinds, member, kind, archive)
            if reason is not None:
                raise ArchiveRejectedError(archive, shown, reason)
            ffi.entry_copy_pathname(entry_p, root + b"/" + encode_name(member))
            if kind == "hardlink":
                target = normalize_member(link or "") or ""
                ffi.entry_copy_link(entry_p, root + b"/" + encode_name(target))
                result.files[member] = result.files[target]
                result.sha256[member] = result.sha256[target]
                _mark(executable, member, target in executable)
            elif kind == "file":
                runnable = is_executable(ffi.entry_perm(entry_p))
                ffi.entry_set_perm(entry_p, file_mode(runnable))
                result.files[member] = ffi.entry_size(entry_p) if ffi.entry_size_is_set(entry_p) else 0
                _mark(executable, member, runnable)
            elif kind == "dir":
                ffi.entry_set_perm(entry_p, DIR_MODE)
                result.dirs.append(member)
            else:
                result.links[member] = link or ""
            ffi.write_header(write_p, entry_p)
            if kind == "file":
                digest, done = hashlib.sha256(), 0
                while ffi.read_data_block(read_p, byref(buf), byref(size), byref(offset)) != ffi.ARCHIVE_EOF:
                    done = _hash_block(digest, done, offset.value, buf.value, size.value)
                    ffi.write_data_block(write_p, buf, size, offset)
                _hash_block(digest, done, result.files[member], None, 0)
                result.sha256[member] = digest.hexdigest()
            ffi.write_finish_entry(write_p)
    result.dirs = list(dict.fromkeys(result.dirs))
    result.executable = sorted(executable)
    return result


def _hash_block(digest: Any, done: int, offset: int, address: int | None, size: int) -> int:
    """Add the data block of `size` bytes at `address` (libarchive's buffer, not copied), which belongs
    at `offset` of the file, to `digest`, after the zeros of a hole since `done`; the new `done`."""
    while done < offset:  # a sparse member's hole reads back as zeros
        step = min(offset - done, _BUFFER)
        digest.update(bytes(step))
        done += step
    if size and address:
        digest.update((c_char * size).from_address(address))
    return max(done, offset + size)


def _mark(executable: set[str], path: str, runnable: bool) -> None:
    if runnable:
        executable.add(path)
    else:
        executable.discard(path)
