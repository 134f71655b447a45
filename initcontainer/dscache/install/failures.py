"""One line for an item that failed: the version, the item (archive, member or file), what went wrong,
and what helps, chosen by the cause.

A failure deep in the byte path knows its archive or file, not the version it belongs to; the worker
that ran the item turns it into an `ItemFailedError` (`item_failure`, pure), so every data-plane
failure line reads `<dataType>/<source>=<version>: <item>: <what happened>; <what helps>`.

What helps depends on whose fault it is:

- A network or server error that outlived the retry budget (`GaveUpError`), or a cut download the
  server cannot resume (`UnpinnedResumeError`): installing again can work (finished items are kept).
- Bytes that differ from what the remote states for them, on every download (a size or digest
  mismatch after `DIGEST_ATTEMPTS` downloads, a size or ETag other than the manifest's or the
  listing's on every try, a corrupt archive whose bytes the manifest vouches for or cannot): a retry
  gets the same bytes, so the remote's content or its manifest must be fixed, usually by publishing
  the version again. Only a publish under way right now makes a later install work unchanged.
- An archive that holds a member dscache never extracts (a path leaving the version, a device, a hard
  link outside): the archive itself must be rebuilt.
- Downloads that disagree with each other (only an ETag that may be no MD5 disagreed, and no two
  downloads agreed): the remote serves changing bytes; install again later.
"""

from __future__ import annotations

from dscache.api.names import VersionKey
from dscache.api.sizes import ZSTD_WINDOW_ENV
from dscache.errors import DscacheError
from dscache.install.digests import DIGEST_ATTEMPTS
from dscache.install.extracted import ArchiveRejectedError
from dscache.install.ingest import UnsettledError, VerificationError
from dscache.layouts.plan import WorkItem
from dscache.remotes.base import NotFoundError, ObjectChangedError, RemoteError, UnpinnedResumeError
from dscache.remotes.retry import GaveUpError

ITEM_FAILURES = (ArchiveRejectedError, VerificationError, RemoteError)
"""What `fetch_item` raises about an item (not the lock's or the disk's failures)."""

GAVE_UP = (
    "a network or server error that did not clear on retries: install again later (finished items are "
    "kept; DSCACHE_RETRY_* set the retry budget)"
)
UNSETTLED = (
    "no two downloads gave the same bytes: the remote serves changing bytes under this name; install "
    "again later, or ask the remote's owner"
)
UNPINNED = (
    "install again (the item starts over), or serve the file with an ETag or Last-Modified so a cut "
    "download can resume"
)


class ItemFailedError(DscacheError):
    """An item of a version failed; the message names the version and the item and says what helps."""

    def __init__(self, version: str, item: str, reason: str, hint: str) -> None:
        super().__init__(f"{version}: {item}: {reason}; {hint}" if hint else f"{version}: {item}: {reason}")
        self.version, self.item, self.reason, self.hint = version, item, reason, hint

    def __reduce__(self) -> tuple[type[ItemFailedError], tuple[str, str, str, str]]:
        return (type(self), (self.version, self.item, self.reason, self.hint))  # crosses the worker pipe


def _stated_by(item: WorkItem) -> str:
    """Where the remote states what an item holds: an archive's manifest, a file's listing."""
    return "the version's dscache-manifest.json" if item.kind == "archive" else "the remote's listing"


def _fix_remote(item: WorkItem) -> str:
    if item.kind == "archive":
        return "publish the version again (dscache publish) or correct its dscache-manifest.json"
    return "upload the file again, or correct what the remote states for it"


def _without(prefix: str, message: str) -> str:
    return message.removeprefix(f"{prefix}: ")


def _archive_hint(item: WorkItem, err: ArchiveRejectedError) -> str:
    if err.cause == "limit":
        return (
            f"set {ZSTD_WINDOW_ENV} (the memory one extraction may take) to a size between the window the "
            "archive needs and 2Gi, or publish the archive with a smaller window"
        )
    if err.cause == "unsafe":
        return (
            "the archive as published holds a member dscache never extracts, and nothing of the version "
            "was installed: rebuild the archive (dscache publish packs only files, directories and "
            "symlinks inside the tree) and publish the version again"
        )
    if item.sha256 is not None:
        return (
            "the archive on the remote is damaged or is not the one the version's dscache-manifest.json "
            "describes, and another download gets the same bytes: publish the version again "
            "(dscache publish), then install again"
        )
    return (
        "the archive on the remote is damaged, and another download gets the same bytes: publish the "
        "version again (dscache publish), then install again"
    )


def describe(item: WorkItem, err: DscacheError) -> tuple[str, str, str]:
    """Pure: (the item as a message names it, what happened, what helps) for `err`, one of
    `ITEM_FAILURES` raised while fetching `item`."""
    what = f"{item.kind} {item.name}"
    stated, fix = _stated_by(item), _fix_remote(item)
    if isinstance(err, ArchiveRejectedError):
        if err.member is not None and err.member != err.archive:
            what = f"member {err.member!r} of archive {err.archive}"
        return what, err.reason, _archive_hint(item, err)
    if isinstance(err, UnsettledError):
        return what, _without(item.name, str(err)), UNSETTLED
    if isinstance(err, VerificationError):
        reason = f"{_without(item.name, str(err))} (on {DIGEST_ATTEMPTS} downloads)"
        hint = f"the remote serves other bytes than {stated} states for them, and a retry gets the same bytes"
        return what, reason, f"{hint}: {fix}"
    if isinstance(err, UnpinnedResumeError):
        return what, str(err), UNPINNED
    if isinstance(err, ObjectChangedError):
        hint = (
            f"the remote holds another object than {stated} states, on every try: if the version is being "
            "published right now, install again once that is done; otherwise"
        )
        return what, str(err), f"{hint} {fix}"
    if isinstance(err, NotFoundError):
        return what, str(err), f"the remote does not hold a file {stated} names: {fix}"
    if isinstance(err, GaveUpError):
        return what, str(err), GAVE_UP
    return what, str(err), ""


def item_failure(key: VersionKey, item: WorkItem, err: DscacheError) -> ItemFailedError:
    """Pure: `err` (raised fetching `item` of version `key`) as one line naming both (`describe`)."""
    what, reason, hint = describe(item, err)
    return ItemFailedError(str(key), what, reason, hint)


def plan_failure(key: VersionKey, err: DscacheError) -> str:
    """Pure: the line for `err`, raised while planning version `key` (reading its manifest or
    listing): named with the version, and with what helps where a retry can (`GaveUpError`)."""
    text = str(err) if str(key) in str(err) else f"{key}: {err}"
    return f"{text}; {GAVE_UP}" if isinstance(err, GaveUpError) else text
