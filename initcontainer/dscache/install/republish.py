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
"""

from __future__ import annotations

from dscache.errors import DscacheError
from dscache.layouts.molmospaces import MOLMO_REMOTE_MANIFEST
from dscache.layouts.plan import VersionPlan
from dscache.remotes.base import NotFoundError, Remote, RemoteError

REPUBLISHED = "the remote was republished while installing: install again"


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
