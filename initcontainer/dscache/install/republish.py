"""An item that fails because the remote was republished under the install: said as such.

An install plans an Archives version from its metadata (the molmospaces manifest, the trie, the
dscache manifest) and downloads the archives afterwards, for minutes. A `dscache publish --overwrite`
meanwhile uploads the new archives (under new names where the bytes differ), switches the metadata,
then removes the archives only the old manifest named (`dscache.publish.stale`): a download the
install starts after that finds its archive gone; a producer that rewrites archives in place serves
bytes other than the old manifest's digest. Either way the remote's error says nothing of the cause.

So when an item of an Archives version fails, the version's metadata is read again (one small read
per metadata file, only on a failure): if any of it is not what the plan was made from, the install
fails with `RepublishedError`, "the remote was republished while installing: install again" (the
next install plans from the new manifest; finished items are kept only where they match it).
A remote read at a pinned revision (a Hugging Face commit) reads what the plan read, so there a
failure is reported as it is.

The metadata files are separate objects, switched one after the other: planning in that moment may
read a new molmospaces manifest beside the old dscache manifest, which disagree. So an Archives plan
that fails on metadata of a version that is there (`settled_plan`) is made once more after a pause
(`SETTLE_SECONDS`): a switch is over by then and the second plan is the new version's; metadata that
still disagree are a broken version, reported as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dscache.errors import DscacheError, InvalidInputError
from dscache.layouts.molmospaces import MOLMO_REMOTE_MANIFEST
from dscache.layouts.plan import LayoutError, VersionPlan
from dscache.remotes.base import NotFoundError, Remote, RemoteError

REPUBLISHED = "the remote was republished while installing: install again"
SETTLE_SECONDS = 1.0
"""How long an Archives plan whose metadata disagree waits before it reads them again: publish
writes its metadata files back to back, so a switch takes milliseconds (a few round trips)."""


class RepublishedError(DscacheError):
    """The version's metadata on the remote changed after the install planned it (exit 1)."""


def republished(remote: Remote, plan: VersionPlan) -> bool:
    """Whether the Archives version of `plan` now has other metadata on `remote` than the plan was made
    from (a file gone counts; one that cannot be read now does not). False for other layouts."""
    if MOLMO_REMOTE_MANIFEST not in plan.metadata:
        return False
    for name, planned in plan.metadata.items():
        try:
            now = remote.read_bytes(f"{plan.key.rel}/{name}")
        except NotFoundError:
            return True
        except RemoteError:
            return False
        if now != planned:
            return True
    return False


def republished_error(plan: VersionPlan) -> RepublishedError:
    """Pure: the one line for the version of `plan`."""
    return RepublishedError(f"{plan.key}: {REPUBLISHED}")


def settled_plan(
    plan: Callable[[], VersionPlan], remote: Remote, metadata_path: str, pause: float = SETTLE_SECONDS
) -> VersionPlan:
    """`plan()` (an Archives plan from `remote`); if it raises LayoutError (not bad input) while the
    version's metadata file at `metadata_path` is there, `plan()` again after `pause` seconds, whose
    error (if any) is raised."""
    try:
        return plan()
    except LayoutError as err:
        if isinstance(err, InvalidInputError):
            raise
        try:
            remote.read_bytes(metadata_path)
        except RemoteError:  # not there (or unreadable): not a switch in progress
            raise err from None
    time.sleep(pause)
    return plan()
