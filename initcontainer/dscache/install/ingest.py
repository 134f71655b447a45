"""Transfer one work item into a version's staging dir: stream-extract an archive, or copy a file.

Every attempt writes only to its own private paths and makes them the item's result by a rename after
the writer lock's fence (`staging.py`), so the worker processes of a writer that lost the lock never
write into the new writer's bytes and publish nothing.

Both are resumable at item granularity: an archive counts as done only with its `.done.json` marker
(written after extraction, verification and the rename of its dir); a file only once renamed from
`parts/` into `files/`. A partially copied file resumes from its length, but only from the very
object it started from: its `Pin` (ETag, version id, Last-Modified, size, and the digests the remote
vouched for) is written to its pin record before the file's first byte, a later attempt resumes
(from a copy, see `staging.adopt_partial`) only when the listing names the same object, and every
request is conditional on it. An object that changes under a transfer (`ObjectChangedError`) makes
the item start again from zero, once; if it changes again, the item fails and nothing of it is kept.
Archives are never resumed across runs: a new run extracts them again from their first byte.

A large object is fetched as parallel ranged parts when the item may open several streams
(`parts.py`): a file's parts are written at their offsets into the attempt's partial file, each
finished part is flushed and then listed in the pin record, so a later run fetches only the parts it
lacks; the whole file is hashed in order as its finished prefix grows and verified as today
(`partfile.py`). An archive's parts are handed to the extractor in order while later ones download.
Parts need the object named by more than its size before the first request (an ETag, version or
HF content id from the listing) or a published sha256 that proves the assembled bytes; otherwise it
goes as one stream. The later parts start once the first part's answer has completed the pin, and
carry it (If-Match).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dscache.errors import DscacheError
from dscache.install import digestlog
from dscache.install.digestlog import StagedDigests
from dscache.install.digests import Hashes, Verdict, judge, next_step, wanted
from dscache.install.extracted import Extracted
from dscache.install.partfile import copy_in_parts
from dscache.install.parts import (
    PartPolicy,
    Span,
    ordered_stream,
    part_size,
    prefix_end,
    split,
)
from dscache.install.staging import (
    StagingPaths,
    adopt_partial,
    discard,
    new_token,
    remove_quietly,
    settle_dir,
)
from dscache.layouts.plan import WorkItem
from dscache.remotes.base import Identity, ObjectChangedError, Pin, Remote
from dscache.store.atomic import read_json, write_json_atomic
from dscache.store.content import file_digest
from dscache.store.lock import Fence
from dscache.store.modes import file_mode, is_executable

Progress = Callable[[int], None]
RESTARTS = 1
"""Times an item starts over because its remote object changed under it, before it fails."""
RESUMABLE = 256 << 10
"""Files larger than this are recorded for a resume (their pin record); smaller ones start over."""


class VerificationError(DscacheError):
    """Transferred bytes do not match the size or digest the remote published."""


class UnsettledError(VerificationError):
    """Only a hint (an ETag that may be no MD5) disagreed with the bytes, and no two downloads agreed."""


@dataclass(frozen=True)
class ItemResult:
    """A finished item: what it transferred and (archives) what it extracted."""

    item: WorkItem
    size: int
    sha256: str | None
    extracted: Extracted
    md5: str | None = None
    """The md5 of the bytes, when the transfer computed one (the remote vouched for an md5)."""
    shared_from: str | None = None
    """The published version (`dt/src/ver`) whose bytes the item links to instead of a download."""
    range_ignored: bool = False
    """The remote answered a request for part of the object with all of it (it ignores Range)."""


def item_done(
    staging: StagingPaths, item: WorkItem, logged: StagedDigests | None = None, *, rehash: bool = True
) -> ItemResult | None:
    """The result of an item finished by an earlier (possibly crashed) run, or None: also when that
    result is not of the object the plan names now (another size, or another sha256 of an archive).

    A finished file's digests are those its transfer logged (`digestlog`; `logged`: the version's
    logs, read here when not given). A file no entry describes (staged by an older dscache) is
    hashed again when `rehash`, and fetched again (None) if that sha256 is not the one the remote
    publishes; without `rehash` (a dry run, which only counts) its result has the published sha256."""
    if item.kind == "archive":
        try:
            done = read_json(staging.archive_done(item.name))
        except (OSError, ValueError):
            return None
        if (item.size is not None and done["size"] != item.size) or (
            item.sha256 is not None and done["sha256"] is not None and done["sha256"] != item.sha256
        ):
            return None  # another archive than the listing names now: extracted again, and replaced
        return ItemResult(item, done["size"], done["sha256"], Extracted.from_json(done), md5=done.get("md5"))
    target = staging.files / item.name
    if not target.is_file():
        return None
    st = target.stat()
    if item.size is not None and st.st_size != item.size:
        return None  # not what the listing names now: copied again, and replaced
    sha256, md5 = item.sha256, None
    entry = (logged if logged is not None else digestlog.load(staging.root)).find(item.name, st)
    if entry is not None:
        sha256, md5 = entry.sha256, entry.md5
    elif rehash:
        try:
            sha256 = file_digest(target, "sha256")
            md5 = file_digest(target, "md5") if _stated(item, "md5") and item.sha256 is None else None
        except OSError:
            return None
    if (entry is not None or rehash) and not _fits(item, sha256, md5):
        return None  # not the bytes the remote states now: copied again, and replaced
    mode = file_mode(is_executable(st.st_mode))
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(target, mode)  # still private to this install: published with dscache's mode
    return ItemResult(
        item,
        st.st_size,
        sha256,
        Extracted.single_file(item.name, st.st_size, is_executable(st.st_mode)),
        md5=md5,
    )


def _stated(item: WorkItem, algorithm: str) -> str | None:
    """Pure: the hex digest of `algorithm` the remote states for `item`, if it states one."""
    return next((hexdigest for name, hexdigest in item.stated if name == algorithm), None)


def _fits(item: WorkItem, sha256: str | None, md5: str | None) -> bool:
    """Pure: whether staged bytes with these digests are the ones the remote states for `item` (a
    digest the remote states and the bytes lack cannot tell)."""
    for algorithm, have in (("sha256", sha256), ("md5", md5)):
        want = item.sha256 if algorithm == "sha256" and item.sha256 else _stated(item, algorithm)
        if want is not None and have is not None and have != want.lower():
            return False
    return True


def _whole(item: WorkItem) -> bool:
    """Whether the item is a whole remote object (not a range of an HF tar shard)."""
    return item.offset == 0 and item.length is None


def fresh_pin(item: WorkItem) -> Pin:
    """Pure: the pin a transfer of `item` starts from: the listed identity and the expected size;
    asks for the remote's stored checksums when the item has no digest of its own to check."""
    if not _whole(item):
        return Pin(item.identity)
    identity = item.identity.merged(Identity(size=item.size))
    has_checksums = item.kind == "archive" or bool(item.checksums)
    return Pin(identity, want_checksums=item.verify and item.sha256 is None and has_checksums)


def _uncounted(_n: int) -> None:
    """The default of the `received` and `resumed` callbacks: nothing counts them."""


@dataclass
class _Tally:
    """Bytes one attempt reports: to `progress` all bytes in the item, so that a failed attempt can take
    them back; of them, to `received` those that came from the remote (never taken back: they crossed
    the network) and to `resumed` those an earlier attempt left in a partial file (taken back with the
    attempt's)."""

    progress: Progress
    received: Progress = _uncounted
    resumed: Progress = _uncounted
    counted: int = 0
    kept: int = 0

    def add(self, n: int) -> None:
        """`n` bytes received from the remote."""
        self.counted += n
        self.progress(n)
        self.received(n)

    def keep(self, n: int) -> None:
        """`n` bytes an earlier attempt left, kept instead of fetched."""
        self.counted += n
        self.kept += n
        self.progress(n)
        self.resumed(n)

    def undo(self) -> None:
        self.progress(-self.counted)
        self.resumed(-self.kept)
        self.counted = self.kept = 0


@dataclass
class _Attempts:
    """Counts an item's downloads: restarts after its object changed, and digest retries."""

    where: str
    restarts: int = 0
    downloads: int = 0
    doubted: list[str] = field(default_factory=list)

    def changed(self, err: ObjectChangedError) -> None:
        """Start over after `err`, or raise if the object already changed once."""
        self.restarts += 1
        if self.restarts > RESTARTS:
            raise ObjectChangedError(f"{err} (again after starting over)") from None

    def judged(self, verdict: Verdict, sha256: str) -> bool:
        """True to accept the bytes, False to download again; raises VerificationError when done."""
        self.downloads += 1
        step = next_step(verdict, sha256, self.doubted, self.downloads)
        if step == "fail":
            if verdict.problem is None:
                raise UnsettledError(f"{self.where}: {verdict.doubt}")
            raise VerificationError(f"{self.where}: {verdict.problem}")
        return step == "accept"


def _verdict(item: WorkItem, size: int, digests: dict[str, str], pin: Pin) -> Verdict:
    vouched = pin if item.verify and _whole(item) else None
    return judge(size, digests, expected_size=item.size, sha256=item.sha256, pin=vouched)


def _part_size(item: WorkItem, pin: Pin, streams: int, policy: PartPolicy) -> int | None:
    """The part size to fetch `item` in, or None for one stream (see the module docstring)."""
    length = item.length if item.length is not None else item.size
    if length is None or not (item.sha256 is not None or pin.identity.validated):
        return None
    return part_size(length, streams, policy)


def _source(remote: Remote, item: WorkItem, pin: Pin, streams: int) -> Iterator[bytes]:
    """The item's bytes in order: one stream, or parts fetched on up to `streams` streams."""
    policy = PartPolicy.from_env().ordered()
    size = _part_size(item, pin, streams, policy)
    length = item.length if item.length is not None else item.size
    if size is None or length is None:
        return remote.stream(item.remote_path, item.offset, item.length, pin=pin)
    parts = split([(item.offset, item.offset + length)], size)
    return ordered_stream(remote, item.remote_path, parts, pin, streams=streams, read_ahead=policy.read_ahead)


def _stream_extract(
    remote: Remote, item: WorkItem, dest: Path, pin: Pin, *, tally: _Tally, streams: int
) -> tuple[Extracted, int, dict[str, str]]:
    """One attempt: stream the archive through the hashes into the extractor; (extracted, bytes,
    digests)."""
    hashes: Hashes | None = None
    counted = 0

    def chunks() -> Generator[bytes]:
        nonlocal counted, hashes
        source = _source(remote, item, pin, streams)
        try:
            for chunk in source:
                if hashes is None:  # the first answer has told what the remote vouches for
                    hashes = Hashes(wanted(pin, item.sha256) if item.verify else ())
                hashes.update(chunk)
                counted += len(chunk)
                tally.add(len(chunk))
                yield chunk
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # stops the part streams of an archive the extractor rejected

    # Imported here, not at the top: libarchive and zstandard are the extractor's alone, and the parent
    # process loads them while its plan's requests are out (`preload.extractor_preloaded`).
    from dscache.install.extract import extract_stream

    stream = chunks()
    try:
        extracted = extract_stream(stream, dest, item.name)
        for _ in stream:  # the bytes after tar's end-of-archive still count for the digest
            pass
    finally:
        stream.close()
    return extracted, counted, (hashes or Hashes()).hexdigests()


def fetch_archive(
    remote: Remote,
    item: WorkItem,
    staging: StagingPaths,
    progress: Progress,
    *,
    fence: Fence,
    streams: int = 1,
    received: Progress = _uncounted,
) -> ItemResult:
    """Stream, verify and extract one archive (no temp copy of the archive) into this attempt's own
    dir, which becomes the item's result by a rename after `fence` (the writer lock's; it raises
    `LockLostError` once another writer took the lock over). Extraction dirs that earlier attempts
    left behind are removed first. A large archive is read over up to `streams` streams.
    `progress(n)`: bytes of the archive (taken back, negative, when an attempt starts over);
    `received(n)`: bytes that came from the remote, a discarded attempt's included."""
    fence()
    work = staging.archive_attempt(item.name, new_token())
    for other in staging.archive_attempts(item.name):
        remove_quietly(staging.archive_attempt(item.name, other))
    attempts = _Attempts(item.name)
    try:
        while True:
            remove_quietly(work)
            work.mkdir(parents=True)
            pin = fresh_pin(item)
            tally = _Tally(progress, received)
            try:
                extracted, counted, digests = _stream_extract(
                    remote, item, work, pin, tally=tally, streams=streams
                )
            except ObjectChangedError as err:
                tally.undo()
                attempts.changed(err)
                continue
            if not attempts.judged(_verdict(item, counted, digests, pin), digests["sha256"]):
                tally.undo()
                continue
            fence()
            settle_dir(work, staging.archive_dir(item.name))
            md5 = digests.get("md5")
            done = {"size": counted, "sha256": digests["sha256"], "md5": md5, **extracted.to_json()}
            # Atomic against kill -9; not fsynced: the version is synced whole before it is published.
            write_json_atomic(staging.archive_done(item.name), done, pretty=False, durable=False)
            return ItemResult(
                item, counted, digests["sha256"], extracted, md5=md5, range_ignored=pin.whole_bodies
            )
    finally:
        remove_quietly(work)  # renamed away on success; otherwise nothing of the attempt is kept


def _copy(
    remote: Remote, item: WorkItem, part: Path, record: Path, *, pin: Pin, tally: _Tally
) -> tuple[int, dict[str, str]]:
    """One attempt over one stream: append the rest of the object to its own `part`; (bytes in it,
    the digests of all of them)."""
    hashes: Hashes | None = None

    def begin(have: int) -> Hashes:
        # Before the first new byte lands, record which object the partial file is a prefix of
        # (a small file is fetched again whole rather than resumed: no record to write and remove).
        if item.size is None or item.size > RESUMABLE:
            record.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(record, pin.to_json(), pretty=False, durable=False)
        started = Hashes(wanted(pin, item.sha256) if item.verify else ())
        if have:
            started.update_from(part, have)
        return started

    with open(part, "ab") as out:
        have = os.fstat(out.fileno()).st_size
        tally.keep(have)
        if item.size is None or have < item.size:
            for chunk in remote.stream(item.remote_path, have, None, pin=pin):
                if hashes is None:
                    hashes = begin(have)
                out.write(chunk)
                hashes.update(chunk)
                tally.add(len(chunk))
        out.flush()
        size = os.fstat(out.fileno()).st_size
    return size, (hashes or begin(have)).hexdigests()


def _start(part: Path, done: list[Span]) -> None:
    """Cut a partial file to the bytes it holds from byte 0 on (a transfer in parts resumed by one
    stream, which appends)."""
    end = prefix_end(done, 0)
    try:
        if part.stat().st_size > end:
            os.truncate(part, end)
    except FileNotFoundError:
        pass


def fetch_file(
    remote: Remote,
    item: WorkItem,
    staging: StagingPaths,
    progress: Progress,
    *,
    fence: Fence,
    streams: int = 1,
    received: Progress = _uncounted,
    resumed: Progress = _uncounted,
) -> ItemResult:
    """Copy one plain file into this attempt's own partial file, resuming from a copy of an earlier
    attempt's partial of the same object, verifying size and digests; a rename after `fence` (see
    `fetch_archive`) makes it the item's result. A partial copy is kept for a later run when the
    transfer fails or the lock was lost. A large file is fetched in parts over up to `streams`
    streams. `progress(n)`: bytes in the file (taken back, negative, when an attempt starts over);
    of them, `received(n)` those that came from the remote (a discarded attempt's included) and
    `resumed(n)` those an earlier attempt left (taken back with the attempt's)."""
    fence()
    token = new_token()
    part, record = staging.part(item.name, token), staging.pin(item.name, token)
    part.parent.mkdir(parents=True, exist_ok=True)
    adopted = adopt_partial(staging, item, token, fresh_pin(item))
    pin, done = adopted.pin, adopted.done
    attempts = _Attempts(item.name)
    while True:
        tally = _Tally(progress, received, resumed)
        chunk_size = _part_size(item, pin, streams, PartPolicy.from_env())
        try:
            if chunk_size is None or item.size is None:
                _start(part, done)
                size, digests = _copy(remote, item, part, record, pin=pin, tally=tally)
            else:
                size, digests = copy_in_parts(
                    remote, item, part, record, pin=pin, added=tally.add, kept=tally.keep, done=done,
                    size=chunk_size, streams=streams,
                )  # fmt: skip
        except ObjectChangedError as err:
            tally.undo()
            discard(part, record)
            attempts.changed(err)
            pin, done = fresh_pin(item), []
            continue
        try:
            accepted = attempts.judged(_verdict(item, size, digests, pin), digests["sha256"])
        except VerificationError:
            discard(part, record)
            raise
        if not accepted:
            tally.undo()
            discard(part, record)
            pin, done = fresh_pin(item), []
            continue
        fence()
        os.chmod(part, file_mode(item.executable))
        digestlog.note(staging.root, item.name, part, digests["sha256"], digests.get("md5"))
        target = staging.files / item.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, target)
        discard(record)
        extracted = Extracted.single_file(item.name, size, item.executable)
        return ItemResult(
            item, size, digests["sha256"], extracted, md5=digests.get("md5"), range_ignored=pin.whole_bodies
        )


def fetch_item(
    remote: Remote,
    item: WorkItem,
    staging: StagingPaths,
    progress: Progress,
    *,
    fence: Fence,
    streams: int = 1,
    received: Progress = _uncounted,
    resumed: Progress = _uncounted,
) -> ItemResult:
    """Dispatch on the item kind; a large item is fetched over up to `streams` streams. The callbacks
    count bytes as `fetch_file`'s do (an archive is never resumed)."""
    if item.kind == "archive":
        return fetch_archive(remote, item, staging, progress, fence=fence, streams=streams, received=received)
    return fetch_file(
        remote, item, staging, progress, fence=fence, streams=streams, received=received, resumed=resumed
    )
