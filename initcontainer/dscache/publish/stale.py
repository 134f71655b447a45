"""A version on a remote is what its manifest names: what publish leaves of an earlier publish goes.

Order of writes (see `upload.upload_version`): the archives (or HF shards), then the metadata, the
molmospaces manifest `mjthor_resource_file_to_size_mb.json` that makes the directory a version, the
dscache manifest last. Only then are the objects of the version directory removed that an earlier
publish wrote, or the replaced version's molmospaces manifest named, and the new manifest does not
name. So a reader never sees a manifest without its archives, and a publish killed on the way is
recognisable: a version directory holding archives and nothing else but what publish writes (a
trie, a dscache manifest), no molmospaces manifest, which `dscache ls-remote` shows as an
incomplete publish (`unfinished_publish`). Running the same publish again finishes it (the "already
published" check looks for the dscache manifest) and removes what the interrupted run left that the
new manifest does not name.

Replacing a published version (`--overwrite`) never writes new bytes under a name the live
version's manifest names: an archive whose name the live version uses for other bytes (another
sha256, or none stated) is uploaded under a name with its own digest in it (`fresh_name`, still a
name publish writes), so a reader that read the old manifest before the switch downloads the old
archives, which stay until the new manifest is in place; only then are they removed. A reader that
asks for one after that finds it gone, and the install says the remote was republished
(`dscache.install.republish`). Bytes equal to the live archive's keep its name (a republish of the
same tree changes nothing). On a remote that pins a revision for its readers (the Hugging Face Hub: a
commit) every file a reader sees is of one commit, so a republish does not affect it at all.

Two producers publishing one version at once: where the remote can hold a lease
(`dscache.publish.lease`) the second refuses. Without one, or should a lapsed lease be taken over
by two at once, the removal still never breaks the live version: right before removing, the
manifests in place are read again, and only what the replaced version named (or, under a lease,
what was there before this publish uploaded anything: a killed publish's leftovers) and the live
manifests do not name is removed (`removable`). A publish whose manifests another publish replaced
meanwhile says so (`Removal.superseded`), and one whose uploads another removed says the version is
broken (`Removal.lost`); both exit non-zero, as the remote does not serve what they published.

A publish that fails (an error, not a kill) where the remote had no version yet removes what it
uploaded (`publishing_into`), so a failed publish leaves nothing half written. Only names publish
writes (top-level `<slug>_<NNNN>.tar.zst`, `shards/NNNNN.tar` and the three metadata files) and the
archives the replaced version named are ever removed: anything else in the directory is not part of
a version and stays.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from dscache.layouts.manifest import DSCACHE_MANIFEST, ManifestError, read_dscache_manifest
from dscache.layouts.molmospaces import MOLMO_REMOTE_MANIFEST
from dscache.layouts.published import PUBLISH_LEASE, is_publish_output
from dscache.remotes.base import NotFoundError, Remote, RemoteError

log = logging.getLogger("dscache.publish.stale")


def fresh_name(name: str, sha256: str) -> str:
    """Pure: `name` (`<slug>_<NNNN>.tar.zst`, as `publish.pack` plans it) with the first 12 hex digits
    of its archive's `sha256` after the slug: `<slug>-<hex12>_<NNNN>.tar.zst`."""
    slug, _, rest = name.rpartition("_")
    return f"{slug}-{sha256[:12].lower()}_{rest}"


def stale_paths(
    listing: Iterable[str], vdir: str, kept: Collection[str], replaced: Collection[str] = ()
) -> list[str]:
    """Pure: the paths of `listing` (relative to the remote base) inside `vdir` that publish wrote, or
    that the replaced version's manifest named (`replaced`: names inside `vdir`), and that are not in
    `kept` (what the new publish uploaded) nor the publish lease, sorted."""
    base = f"{vdir.strip('/')}/"
    return sorted(
        p
        for p in listing
        if p.startswith(base)
        and p not in kept
        and p[len(base) :] != PUBLISH_LEASE
        and (is_publish_output(p[len(base) :]) or p[len(base) :] in replaced)
    )


@runtime_checkable
class DeletingRemote(Protocol):
    """A remote publish can remove files from (every remote it writes to)."""

    def delete_files(self, paths: list[str], message: str | None = None) -> None: ...


def removable(
    stale: Iterable[str],
    vdir: str,
    *,
    replaced: Collection[str],
    earlier: Collection[str],
    live: Collection[str],
) -> list[str]:
    """Pure: the `stale` paths (from `stale_paths`) a publish may remove once its manifest is in place:
    those the version it replaced named (`replaced`, names inside `vdir`) or that were there before it
    uploaded anything (`earlier`, paths: what a killed publish left), and that the live manifests do
    not name (`live`, names inside `vdir`, read after the switch). What appeared meanwhile is another
    publisher's, and what the live manifests name is what readers fetch: neither is removed."""
    base = f"{vdir.strip('/')}/"
    return sorted(
        p for p in stale if (p[len(base) :] in replaced or p in earlier) and p[len(base) :] not in live
    )


def live_archives(remote: Remote, vdir: str) -> frozenset[str] | None:
    """The archive names the manifests now in `vdir` name (molmospaces and dscache manifests, read
    now), or None if one of them is unreadable (a dscache manifest's line is logged as a warning).
    Raises RemoteError."""
    try:
        named = json.loads(remote.read_bytes(f"{vdir}/{MOLMO_REMOTE_MANIFEST}"))
    except NotFoundError:
        named = {}
    except (ValueError, RecursionError):  # not JSON, or nested too deeply
        return None
    if not isinstance(named, dict):
        return None
    try:
        manifest = read_dscache_manifest(remote, vdir)
    except ManifestError as err:
        log.warning("%s", err)
        return None
    stated = manifest.archives if manifest is not None else {}
    return frozenset(n for n in named if isinstance(n, str)) | frozenset(stated)


@dataclass
class Removal:
    """What `remove_stale` removed (paths); whether the live manifests name other archives than this
    publish's (`superseded`: another publish switched the version after this one); and what this
    publish uploaded into the version directory that is gone (`lost`, paths: removed by another
    publish on a remote without a lease)."""

    removed: list[str]
    superseded: bool = False
    lost: list[str] = field(default_factory=list)


def remove_stale(
    remote: Remote,
    vdir: str,
    kept: Collection[str],
    log: Callable[[str], None] = lambda _msg: None,
    replaced: Collection[str] = (),
    *,
    earlier: Collection[str] = (),
    own: Collection[str] | None = None,
) -> Removal:
    """Remove from `remote` what publish wrote in `vdir`, or the replaced version named (`replaced`,
    from `publishing_into`), that `kept` (what this publish uploaded) does not hold, within the limits
    of `removable`: only what was there before (`earlier`: the listing before this publish uploaded)
    or the replaced version named, never what the live manifests name, re-read right before
    removing. `own`: the archive names this publish's manifest names; when given and the live
    manifests name others, the result says `superseded`.

    Call it after the new manifest is in place. Raises RemoteError.
    """
    if not isinstance(remote, DeletingRemote):
        return Removal([])
    live = live_archives(remote, vdir)
    superseded = own is not None and live is not None and live != frozenset(own)
    listing = [f.path for f in remote.list_files(vdir)]
    base = f"{vdir.strip('/')}/"
    lost = [] if superseded else sorted(p for p in set(kept) - set(listing) if p.startswith(base))
    if live is None:
        log(f"not removing anything from {remote.url}/{vdir}: its manifests cannot be read")
        return Removal([], superseded, lost)
    listed = stale_paths(listing, vdir, kept, replaced)
    stale = removable(listed, vdir, replaced=replaced, earlier=earlier, live=live)
    if stale:
        log(f"removing {len(stale)} objects of {remote.url}/{vdir} the new manifest does not name")
        remote.delete_files(stale, f"dscache publish: remove {len(stale)} stale objects of {vdir}")
    return Removal(stale, superseded, lost)


class LiveArchives:
    """The archives the version being replaced names, and whether a new archive would put other
    bytes under one of their names (`shadows`).

    Their digests come from the version's dscache manifest, else from the listing (an HF LFS oid);
    an archive of unknown digest (a molmospaces-only version, a publish killed before its dscache
    manifest) whose listed size is the new archive's is read once and hashed, so an unchanged archive
    keeps its name; one of another size differs for sure.
    """

    def __init__(self, remote: Remote, vdir: str, named: Collection[str]) -> None:
        self.remote, self.vdir = remote, vdir
        self.digests: dict[str, str | None] = dict.fromkeys(named)
        if not named:
            return
        self.listed = {f.path.removeprefix(f"{vdir}/"): f for f in remote.list_files(vdir)}
        try:
            manifest = read_dscache_manifest(remote, vdir)
        except ManifestError as err:  # publish replaces it: said, and its digests are not used
            log.warning("%s", err)
            manifest = None
        stated = manifest.archives if manifest is not None else {}
        for name in named:
            info, listed = stated.get(name), self.listed.get(name)
            sha = (info.sha256 if info is not None else None) or (listed.sha256 if listed else None)
            self.digests[name] = sha.lower() if sha else None

    def shadows(self, name: str, sha256: str, size: int) -> bool:
        """Whether uploading an archive of `sha256` and `size` as `name` would change the bytes a
        reader of the replaced version gets under `name`. Raises RemoteError (hashing one)."""
        if name not in self.digests or name not in self.listed:
            return False  # not named, or named but gone: no reader gets bytes under it
        known = self.digests[name]
        if known is None:
            if self.listed[name].size != size:
                return True
            digest = hashlib.sha256()
            for chunk in self.remote.stream(f"{self.vdir}/{name}"):
                digest.update(chunk)
            known = self.digests[name] = digest.hexdigest()
        return known != sha256.lower()


def _previous(remote: Remote, vdir: str) -> tuple[bool, frozenset[str]]:
    """Whether `vdir` holds a version (a manifest, complete or another producer's), and the archives
    its molmospaces manifest names (none if it is unreadable)."""
    try:
        named = json.loads(remote.read_bytes(f"{vdir}/{MOLMO_REMOTE_MANIFEST}"))
    except NotFoundError:
        try:
            remote.read_bytes(f"{vdir}/{DSCACHE_MANIFEST}")
        except NotFoundError:
            return False, frozenset()
        return True, frozenset()
    except (ValueError, RecursionError):  # not JSON, or nested too deeply
        return True, frozenset()
    names = named if isinstance(named, dict) else {}
    return True, frozenset(n for n in names if isinstance(n, str) and "/" not in n)


@contextlib.contextmanager
def publishing_into(
    remote: Remote, vdir: str, log: Callable[[str], None] = lambda _msg: None
) -> Iterator[frozenset[str]]:
    """Run the block (the uploads of a publish into `vdir`), giving it the archives the version there
    named before (for `remove_stale`). If the block raises and `vdir` held no version before, remove
    what publish wrote there (best effort: the block's error is what is raised)."""
    existed, replaced = _previous(remote, vdir)
    try:
        yield replaced
    except Exception:
        if not existed and isinstance(remote, DeletingRemote):
            with contextlib.suppress(RemoteError, OSError):
                written = stale_paths((f.path for f in remote.list_files(vdir)), vdir, ())
                if written:
                    remote.delete_files(
                        written, f"dscache publish: remove what a failed publish of {vdir} wrote"
                    )
                    log(f"removed the {len(written)} objects the failed publish had uploaded to {vdir}")
        raise
