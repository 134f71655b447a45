"""What `dscache publish` writes in a version directory of a remote: the names, as pure rules.

Shared by `publish` (what it may replace or remove: `dscache.publish.stale`, and what it refuses to
write beside: `dscache.publish.upload.remote_version_problem`) and by `ls-remote`
(`dscache.layouts.offered`: a killed publish is shown as incomplete, never as a files version).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dscache.layouts.manifest import DSCACHE_MANIFEST
from dscache.layouts.molmospaces import MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST

_ARCHIVE = re.compile(r"^[A-Za-z0-9_-]*_[0-9]{4,}\.tar\.zst$")
_SHARD = re.compile(r"^shards/[0-9]{5,}\.tar$")
PUBLISH_METADATA = frozenset({MOLMO_COMBINED_TRIES, MOLMO_REMOTE_MANIFEST, DSCACHE_MANIFEST})
# held by the publish running in the directory (`dscache.publish.lease`); never part of a version
PUBLISH_LEASE = ".dscache-publish-lease.json"


def is_publish_output(rel: str) -> bool:
    """Pure: whether `rel` (a path inside a version directory) has a name `dscache publish` writes."""
    return (
        rel in PUBLISH_METADATA
        or rel == PUBLISH_LEASE
        or _ARCHIVE.match(rel) is not None
        or _SHARD.match(rel) is not None
    )


def unfinished_publish(names: Iterable[str]) -> bool:
    """Pure: whether a directory holding `names` (paths inside it) and no molmospaces manifest is a
    publish that did not finish: archives, and nothing but what publish writes before that manifest
    (archives, the trie, a dscache manifest of an earlier publish, its lease). A killed publish of HF
    shards shows as a files version (a tree of `shards/NNNNN.tar` is also a plausible plain dataset)."""
    listed = list(names)
    early = (PUBLISH_METADATA | {PUBLISH_LEASE}) - {MOLMO_REMOTE_MANIFEST}
    return any(_ARCHIVE.match(n) for n in listed) and all(
        _ARCHIVE.match(n) is not None or n in early for n in listed
    )
