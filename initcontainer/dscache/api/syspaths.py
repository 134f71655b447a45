"""System directories a DatasetCache may not put data over, and the lexical form of absolute paths.

Pods see a cache's links at `spec.mountPath` (an emptyDir the init container fills with links into
the cache). Over a directory programs load code, configuration or credentials from, it would replace
them with files the cache's source controls, in every pod that uses the cache. So a mount path may
neither be nor lie under nor contain one of `SYSTEM_DIRS` (containing: `/` or `/var` would hide them
all). The list is the Filesystem Hierarchy Standard's directories of programs, libraries,
configuration and kernel interfaces (FHS 3.0, chapter 3), plus `/root` (root's startup files) and
`/var/run` (the older name of `/run`, where Kubernetes mounts service-account tokens:
`/var/run/secrets`). `/tmp`, `/home`, `/opt`, `/srv`, `/mnt`, `/data` are not in it: they hold data,
and a workload that loads code from a data directory chose to.

Paths are judged as text: the webhook cannot see a container's or a node's filesystem. A path must be
absolute with no `..` segment (which a kernel resolves after symlinks, so it could leave any
directory the text seems to be under); `//`, `.` segments and a trailing `/` are only spelling and are
normalised away. Standard library only: `prepare` and the operator's settings use it.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

SYSTEM_DIRS = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/run",
)


class PathFormError(ValueError):
    """A path that is not absolute or has a `..` segment; the message says which and why."""


def normal_path(path: str) -> str:
    """`path` with `//`, `.` segments and any trailing `/` removed (`/a//b/./` -> `/a/b`).

    Raises PathFormError for a relative path or one with a `..` segment.
    """
    if not path.startswith("/"):
        raise PathFormError(f"{path!r} is not an absolute path")
    if ".." in path.split("/"):
        raise PathFormError(
            f"{path!r} has a '..' segment: paths are compared as written, and '..' is resolved after "
            "symlinks, so it could lead anywhere"
        )
    return str(PurePosixPath("/", *(p for p in path.split("/") if p not in ("", "."))))


def overlaps(a: str, b: str) -> bool:
    """Whether one normal path is the other or lies under it (`/usr` and `/usr/lib`, `/` and `/x`)."""
    pa, pb = PurePosixPath(a), PurePosixPath(b)
    return pa.is_relative_to(pb) or pb.is_relative_to(pa)


def system_dir_overlap(path: str) -> str | None:
    """The system directory a normal `path` is, lies under or contains (None: it is clear of them)."""
    return next((d for d in SYSTEM_DIRS if overlaps(path, d)), None)


# How a mountPath is spelled: absolute, no empty, `.` or `..` segment, at most a trailing `/`. The CRD
# states it as a pattern; the model refuses other spellings with the reasons `mount_path_refusal` gives.
MOUNT_PATH_FORM = r"^/$|^(/([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+))+/?$"
_MOUNT_PATH_FORM = re.compile(MOUNT_PATH_FORM)


def mount_path_refusal(path: str) -> str | None:
    """Why `path` may not be a DatasetCache's `mountPath` (None: it may)."""
    if not _MOUNT_PATH_FORM.match(path):
        try:
            normal_path(path)
        except PathFormError as err:
            return str(err)
        return f"{path!r} has an empty or '.' segment: write the path plainly, e.g. /dscache"
    clean = normal_path(path)
    system = system_dir_overlap(clean)
    if system is None:
        return None
    if clean == system:
        where = "is"
    else:
        where = "lies under" if PurePosixPath(clean).is_relative_to(system) else "contains"
    return (
        f"{path!r} {where} the system directory {system}: the cache's links would replace what programs "
        "load from there (code, configuration, credentials) in every pod that uses the cache; "
        "use a directory of its own such as /dscache"
    )


def _refused_mount_path_pattern() -> str:
    """An RE2 pattern matching exactly the mount paths of `MOUNT_PATH_FORM` that `mount_path_refusal`
    refuses: a system directory, anything under one, or one of their parents (`/`, `/var`)."""
    names = "|".join(re.escape(d[1:]) for d in SYSTEM_DIRS)
    parents = sorted({str(p)[1:] for d in SYSTEM_DIRS for p in PurePosixPath(d).parents if str(p) != "/"})
    return rf"^/(?:(?:{names})(?:/.*)?|(?:{'|'.join(map(re.escape, parents))})/?)?$"


REFUSED_MOUNT_PATH = _refused_mount_path_pattern()
