"""The `files` layout: a version is a plain file tree under `<dt>/<src>/<ver>/`, copied as is.

Every remote path must be able to become a file on disk, and all of them together one tree. The
listing is checked before anything is downloaded: a path that is also the directory of another
(`page` and `page/index.html`, possible on S3 where keys are only names), empty, `.` or `..`
segments, a name longer than a filesystem allows, and non-empty objects whose key ends in `/` are
refused with one line naming the paths. Empty `dir/` objects (the S3 console's folder markers) never
reach this module: they hold nothing and are skipped by the listing.

A Hugging Face source may select files by glob (`allowPatterns`/`ignorePatterns`): the listing is
filtered by huggingface_hub's own `filter_repo_objects` (snapshot_download's rules) on each file's
path in the version before anything is planned, so the version, its inventory and `verify` hold
exactly the selected files.
"""

from __future__ import annotations

from collections.abc import Sequence

from dscache.api.names import VersionKey
from dscache.layouts.plan import LayoutError, VersionPlan, WorkItem
from dscache.remotes.base import Remote, RemoteError, RemoteFile
from dscache.remotes.retry import check_rel_path
from dscache.store.members import check_member

NAME_MAX = 255
"""Longest file name (one path segment, in bytes) Linux filesystems accept."""


def path_problem(name: str) -> str | None:
    """Pure: why the relative path `name` cannot be a file of a version (None if it can)."""
    if name.endswith("/"):
        return "ends with '/': an object with content that cannot be a file"
    if any(seg in ("", ".", "..") for seg in name.split("/")):
        return "has an empty, '.' or '..' segment"
    if any(len(seg.encode("utf-8", "surrogateescape")) > NAME_MAX for seg in name.split("/")):
        return f"has a segment longer than {NAME_MAX} bytes"
    return check_member(name, "file", None)


def stated_digests(**digests: str | None) -> tuple[tuple[str, str], ...]:
    """Pure: the (algorithm, lower-case hex) pairs of the digests given (None: not stated)."""
    return tuple((alg, value.lower()) for alg, value in sorted(digests.items()) if value)


def file_and_directory(names: list[str]) -> tuple[str, str] | None:
    """Pure: the first (file, path below it) pair in which one name is a directory of another."""
    known = set(names)
    for name in sorted(names):
        pos = name.find("/")
        while pos != -1:
            if name[:pos] in known:
                return name[:pos], name
            pos = name.find("/", pos + 1)
    return None


def files_problem(where: str, names: Sequence[str]) -> str | None:
    """Pure: why the files `names` (paths in a version at `where`, e.g. `s3://b/models/y/v1`) cannot be
    one version's tree, as one line naming the file, or None. The one rule of `install` (which refuses
    such a version before any transfer) and `ls-remote` (which offers it as not installable)."""
    for name in sorted(names):
        reason = path_problem(name)
        if reason is None:
            try:
                check_rel_path(name)
            except RemoteError as err:
                reason = str(err)
        if reason is not None:
            return f"{where}: remote file {name!r} rejected: {reason}"
    clash = file_and_directory(list(names))
    if clash is not None:
        file, below = clash
        return (
            f"{where}/{file} is a file and also the directory of {where}/{below}: "
            "a version cannot hold both (rename or remove one of them)"
        )
    return None


def build_files_plan(key: VersionKey, listing: list[RemoteFile], where: str, base: str) -> VersionPlan:
    """Pure: one item per remote file below `base`; refuses (LayoutError, `files_problem`) paths that
    cannot be files of one tree before anything is transferred."""
    prefix = f"{base}/" if base else ""
    items: list[WorkItem] = []
    for rf in sorted(listing, key=lambda f: f.path):
        if not rf.path.startswith(prefix):
            raise LayoutError(f"{where}: listing returned {rf.path!r} outside {prefix}")
    problem = files_problem(where, [rf.path[len(prefix) :] for rf in listing])
    if problem is not None:
        raise LayoutError(problem)
    for rf in sorted(listing, key=lambda f: f.path):
        name = rf.path[len(prefix) :]
        items.append(
            WorkItem(
                kind="file",
                name=name,
                remote_path=rf.path,
                size=rf.size,
                sha256=rf.sha256,
                identity=rf.identity,
                executable=rf.executable,
                checksums=rf.checksums,
                stated=stated_digests(sha256=rf.sha256, md5=rf.md5),
            )
        )
    if not items:
        raise LayoutError(f"version {key} not found: no files under {where}/")
    return VersionPlan(key=key, layout="files", items=items, extracted_bytes=sum(rf.size for rf in listing))


def select_files(
    listing: list[RemoteFile],
    base: str,
    allow: Sequence[str] | None,
    ignore: Sequence[str] | None,
) -> list[RemoteFile]:
    """The files of `listing` whose path below `base` passes huggingface_hub's `filter_repo_objects`
    with `allow`/`ignore` globs (snapshot_download's semantics); all of them without patterns."""
    if not allow and not ignore:
        return listing
    from huggingface_hub.utils import filter_repo_objects  # type: ignore[attr-defined]

    cut = len(base) + 1 if base else 0
    return list(
        filter_repo_objects(
            listing,
            allow_patterns=list(allow) if allow else None,
            ignore_patterns=list(ignore) if ignore else None,
            key=lambda f: f.path[cut:],
        )
    )


def plan_files(
    remote: Remote,
    key: VersionKey,
    base: str,
    *,
    allow: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
) -> VersionPlan:
    """List the version's files under `base` on `remote` (`<dt>/<src>/<ver>`, or the whole repo at a
    revision), keep those the `allow`/`ignore` globs select (see `select_files`) and plan their copy.
    Raises LayoutError when the version has no files, or the globs select none of them."""
    where = f"{remote.url}/{base}".rstrip("/")
    listing = remote.list_files(base)
    selected = select_files(listing, base, allow, ignore)
    if listing and not selected:
        raise LayoutError(
            f"version {key}: none of the {len(listing)} files under {where}/ matches "
            f"allowPatterns {list(allow or [])} / ignorePatterns {list(ignore or [])}"
        )
    return build_files_plan(key, selected, where, base)
