"""Versions that share bytes: an item a published version already holds is hard-linked, not downloaded.

An item is shared when the remote states a digest for it before any byte is read (`WorkItem.stated`:
a dscache manifest's or an LFS pointer's sha256, a listing's md5) and a published version's items
record (`store/shares.py`) has an item of the same layout, size and digest; the digests in those
records are of the bytes that were transferred, so a match means the same bytes. Without a stated
digest nothing is shared: a name, a size or a modification time proves no content.

- `files` layout: the published file is hard-linked into this attempt's private partial path, then
  renamed into `files/` after the writer lock's fence, as a download would be.
- `archives` layout: the archive's whole extracted tree in the published version (its files
  hard-linked, its symlinks and directories made anew) becomes this attempt's extraction dir, which
  is settled and marked done as a download's is. Only versions that hold the archive's whole tree
  record it (a later archive may have replaced some of its files); other matches are not shared.

Published files are read-only and never modified again (nothing chmods them: deletion changes only
directory modes), so one inode in several versions is safe, as long as nobody broke that contract.
Since someone may have (root overwriting bytes in place keeps the size), a published file of the
`files` layout is hashed against its record's digest before it is linked or copied
(`store/content.py`: sha256 of 100 MB in the page cache measured at 0.07-0.09 s, against about 1 s to
download it at 800 Mbit/s): a file whose bytes differ is not shared, the item downloads instead and
one warning names the damaged file and `install --repair`. The same holds for the files an archive put
into a version: extraction hashes each member as it writes it (`extract.Extracted.sha256`, kept in the
items record's `extracted.fileSha256`), and each is hashed against that before the archive's tree is linked
(measured on this machine, 4,000 files of 16 KiB in the page cache: 0.22 s to link them hashed, 0.10 s
unhashed; extracting 262 MB, hashing while writing stayed within the noise of a shared machine,
3.2-3.9 s against 3.4-4.5 s). An archive whose members have no recorded sha256 (extracted by an
older dscache) cannot be checked and is downloaded, never linked.
A link is made only when the published file has exactly dscache's mode (`store/modes.py`); a file
whose mode someone changed is copied with that mode instead, so no version inherits the change. A
link that the filesystem refuses (another filesystem, EXDEV; a link count at its limit; a hardened
kernel that refuses links to files of another owner) falls back to a copy in the kernel
(`shutil.copyfile`: sendfile). A published file whose type or size no longer fits its record makes
the item download instead.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
from pathlib import Path

from dscache.install import digestlog
from dscache.install.extracted import DIR_MODE, Extracted
from dscache.install.ingest import ItemResult
from dscache.install.staging import StagingPaths, new_token, remove_quietly, settle_dir
from dscache.layouts.plan import WorkItem
from dscache.store.atomic import write_json_atomic
from dscache.store.content import expected_digest, file_digest, holds
from dscache.store.lock import Fence
from dscache.store.modes import file_mode
from dscache.store.shares import PublishedItem, ShareIndex

_COPY_INSTEAD = frozenset({errno.EXDEV, errno.EMLINK, errno.EPERM, errno.EACCES, errno.ENOTSUP})
log = logging.getLogger("dscache.install.share")


class _Unusable(Exception):
    """The published item no longer matches its record: download instead."""


class _Damaged(_Unusable):
    """The published file's bytes differ from its record's digest: download, and tell the user."""


def place(
    src: Path, dst: Path, *, size: int, executable: bool, digest: tuple[str, str] | None = None
) -> bool:
    """Make `dst` hold the bytes of the published regular file `src` (`size` bytes, and when given the
    (algorithm, hex) `digest`): a hard link when the filesystem allows it and `src` has exactly
    dscache's mode (True), else a copy with dscache's mode (False).
    Raises `_Unusable` when `src` is not a regular file of `size` bytes or cannot be read, `_Damaged`
    when its bytes do not have `digest`."""
    try:
        st = os.lstat(src)
    except OSError as err:
        raise _Unusable(f"{src}: {err.strerror}") from None
    if not stat.S_ISREG(st.st_mode) or st.st_size != size:
        raise _Unusable(f"{src}: not the regular file of {size} bytes its record names")
    if digest is not None:
        try:
            same = holds(src, digest)
        except OSError as err:
            raise _Unusable(f"{src}: {err.strerror}") from None
        if not same:
            raise _Damaged(f"{src}: its bytes are not the ones installed ({digest[0]} differs)")
    if stat.S_IMODE(st.st_mode) == file_mode(executable):
        try:
            os.link(src, dst)
            return True
        except OSError as err:
            if err.errno not in _COPY_INSTEAD:
                raise
    shutil.copyfile(src, dst)
    os.chmod(dst, file_mode(executable))
    return False


def _share_file(found: PublishedItem, item: WorkItem, staging: StagingPaths, fence: Fence) -> ItemResult:
    assert item.size is not None
    fence()
    part = staging.part(item.name, new_token())
    part.parent.mkdir(parents=True, exist_ok=True)
    try:
        digest = expected_digest(found.sha256, found.md5)
        place(found.root / found.name, part, size=item.size, executable=item.executable, digest=digest)
        sha256 = found.sha256 or _digest_of(part)
        fence()
        digestlog.note(staging.root, item.name, part, sha256, found.md5)
        target = staging.files / item.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)  # renamed away on success
    extracted = Extracted.single_file(item.name, item.size, item.executable)
    return ItemResult(item, item.size, sha256, extracted, md5=found.md5, shared_from=found.version.rel)


def _digest_of(path: Path) -> str:
    """The sha256 of a file a repair reuses from a version recorded without one (installed by an older
    dscache), so that the fresh copy's record has it. Raises `_Unusable` when it cannot be read."""
    try:
        return file_digest(path, "sha256")
    except OSError as err:
        raise _Unusable(f"{path}: {err.strerror}") from None


def checkable(found: PublishedItem, kind: str) -> bool:
    """Pure: whether the published item `found` may be shared for an item of `kind` ("file" or
    "archive") as far as its record tells: a file always (its digest is checked before the link), an
    archive only when the version holds its whole tree and a sha256 for each of its files."""
    if kind != "archive":
        return True
    return found.extracted is not None and not Extracted.from_json(found.extracted).unhashed()


def _share_archive(found: PublishedItem, item: WorkItem, staging: StagingPaths, fence: Fence) -> ItemResult:
    if found.extracted is None or not checkable(found, item.kind):
        raise _Unusable(f"{found.version}: does not hold all of {found.name}, each file with its sha256")
    extracted = Extracted.from_json(found.extracted)
    fence()
    work = staging.archive_attempt(item.name, new_token())
    try:
        work.mkdir(parents=True)
        for rel in extracted.dirs:
            os.makedirs(work / rel, mode=DIR_MODE, exist_ok=True)
        runnable = set(extracted.executable)
        for rel, size in extracted.files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            digest = ("sha256", extracted.sha256[rel])
            place(found.root / rel, work / rel, size=size, executable=rel in runnable, digest=digest)
        for rel, target in extracted.links.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, work / rel)
        fence()
        settle_dir(work, staging.archive_dir(item.name))
    finally:
        remove_quietly(work)  # renamed away on success
    done = {"size": found.size, "sha256": found.sha256, "md5": found.md5, **extracted.to_json()}
    write_json_atomic(staging.archive_done(item.name), done, pretty=False, durable=False)
    return ItemResult(item, found.size, found.sha256, extracted, md5=found.md5, shared_from=found.version.rel)


def reuse_item(
    found: PublishedItem, item: WorkItem, staging: StagingPaths, fence: Fence
) -> ItemResult | None:
    """The item's result made of the published item `found`'s bytes, or None when they no longer fit
    its record (then it is downloaded; a file whose bytes changed is named in a warning). `fence` is
    the writer lock's."""
    try:
        if item.kind == "archive":
            return _share_archive(found, item, staging, fence)
        return _share_file(found, item, staging, fence)
    except _Damaged as err:
        log.warning(
            "%s; downloading %s instead (to repair %s: run this install again with --repair --content)",
            err,
            item.name,
            found.version,
        )
        return None
    except _Unusable:
        return None


def share_item(
    index: ShareIndex, layout: str, item: WorkItem, staging: StagingPaths, fence: Fence
) -> ItemResult | None:
    """The item's result made of a published version's bytes, or None when no published version holds
    them (or none of those that should still does): then it is downloaded. `fence` is the writer
    lock's (raises once another writer took the lock over)."""
    for found in index.candidates(layout, item.stated, item.size):
        result = reuse_item(found, item, staging, fence)
        if result is not None:
            return result
    return None


def intact(found: PublishedItem, item: WorkItem, damaged: frozenset[str] | None) -> bool:
    """Pure: whether a repair may reuse the published item `found` for the planned `item`: the same
    name, size and (where both have one) sha256, and none of the paths it put into the version among
    `damaged` (what `verify` found missing or changed; None: the whole version is suspect). An
    archive whose tree the version does not hold whole is fetched again."""
    if damaged is None or item.size is None or found.size != item.size:
        return False
    if item.sha256 and found.sha256 and item.sha256.lower() != found.sha256.lower():
        return False
    if item.kind != "archive":
        return found.name not in damaged
    if found.extracted is None:
        return False
    extracted = Extracted.from_json(found.extracted)
    return not (set(extracted.files) | set(extracted.links)) & damaged


def entries_of(layout: str, results: list[ItemResult]) -> dict[str, dict[str, object]]:
    """Pure: the items record entries of a version's results (`store/shares.py`). An archive's
    `extracted` is kept only when no later archive (in name order, as they are merged) replaces one of
    its files or symlinks."""
    entries: dict[str, dict[str, object]] = {}
    later: set[str] = set()
    for res in sorted(results, key=lambda r: r.item.name, reverse=True):
        entry: dict[str, object] = {"size": res.size, "sha256": res.sha256, "md5": res.md5}
        if layout == "archives":
            paths = set(res.extracted.files) | set(res.extracted.links)
            if not paths & later:
                entry["extracted"] = res.extracted.to_json()
            later |= paths
        entries[res.item.name] = entry
    return dict(sorted(entries.items()))
