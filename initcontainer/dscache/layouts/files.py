"""The `files` layout: a version is a plain file tree under `<dt>/<src>/<ver>/`, copied as is."""

from __future__ import annotations

from dscache.api.names import VersionKey
from dscache.layouts.plan import LayoutError, VersionPlan, WorkItem
from dscache.remotes.base import Remote, RemoteFile
from dscache.store.members import check_member


def build_files_plan(key: VersionKey, listing: list[RemoteFile], where: str, base: str) -> VersionPlan:
    """Pure: one item per remote file below `base`; paths are checked like archive members."""
    prefix = f"{base}/" if base else ""
    items: list[WorkItem] = []
    for rf in sorted(listing, key=lambda f: f.path):
        if not rf.path.startswith(prefix):
            raise LayoutError(f"{where}: listing returned {rf.path!r} outside {prefix}")
        name = rf.path[len(prefix) :]
        reason = check_member(name, "file", None)
        if reason is not None:
            raise LayoutError(f"{where}: remote file {name!r} rejected: {reason}")
        items.append(
            WorkItem(
                kind="file",
                name=name,
                remote_path=rf.path,
                size=rf.size,
                sha256=rf.sha256,
                md5=rf.md5,
                executable=rf.executable,
            )
        )
    if not items:
        raise LayoutError(f"version {key} not found: no files under {where}/")
    return VersionPlan(key=key, layout="files", items=items, extracted_bytes=sum(rf.size for rf in listing))


def plan_files(remote: Remote, key: VersionKey, base: str) -> VersionPlan:
    """List the version's files under `base` on `remote` (`<dt>/<src>/<ver>`, or the whole repo at a
    revision) and plan their copy."""
    where = f"{remote.url}/{base}".rstrip("/")
    return build_files_plan(key, remote.list_files(base), where, base)
