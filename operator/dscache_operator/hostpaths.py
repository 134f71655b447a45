"""Host directories pods may use as scratch: the cluster admin's list, and a path checked against it.

hostPath scratch is mounted writable into a pod's init container and every container of the pod, and
is shared by every pod on the node that uses it; the path comes from a DatasetCache
(`spec.scratch.hostPath.path`) or a pod (`dscache.io/scratch: HostPath:/DIR`), neither of whose
authors may choose a host directory on their own. So a path is allowed only if it is one of the
directories the admin lists (chart value `scratch.hostPaths`, operator setting `scratch_host_paths`),
exactly: not a path below one. The webhook judges text and cannot see the node, where the kubelet
resolves the path: a `..` segment, or a symlink below an allowed directory (which any pod using that
scratch can create), could lead anywhere. With exact directories the only symlinks that matter are in
the admin's own paths, which must be directories only root can change on every node
(docs/threat-model.md). The same list is checked when a DatasetCache is admitted, when it is
reconciled, and when a pod's patch is built.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from dscache.api.syspaths import SYSTEM_DIRS, PathFormError, normal_path, overlaps

# Besides the system directories: where the kubelet and container runtimes keep every pod's volumes
# (secrets included), images and logs.
NODE_DIRS = (
    *SYSTEM_DIRS,
    "/var/lib/kubelet",
    "/var/lib/containerd",
    "/var/lib/containers",
    "/var/lib/docker",
    "/var/log",
)
ADMIN_VALUE = "the chart value scratch.hostPaths"


class HostPathError(ValueError):
    """A host path the admin does not allow; the message says why (without naming where it came from)."""


def admin_dir(path: str) -> str:
    """`path` in normal form, if the admin may list it as scratch: absolute, no `..`, clear of the node's
    system, kubelet and runtime directories. Raises HostPathError saying why not."""
    try:
        clean = normal_path(path)
    except PathFormError as err:
        raise HostPathError(str(err)) from None
    node = next((d for d in NODE_DIRS if overlaps(clean, d)), None)
    if node is not None:
        raise HostPathError(f"{path!r} overlaps {node}, which pods must never be able to write")
    return clean


def check_host_path(path: str, allowed: tuple[str, ...]) -> str:
    """`path` in normal form if it is one of the `allowed` directories; else raise HostPathError."""
    try:
        clean = normal_path(path)
    except PathFormError as err:
        raise HostPathError(str(err)) from None
    if clean in allowed:
        return clean
    if not allowed:
        raise HostPathError(
            f"hostPath scratch is not allowed in this cluster: the admin allows no host directory "
            f"({ADMIN_VALUE}); use emptyDir or none"
        )
    reason = (
        "only the listed directories themselves are, not paths below them (the node resolves symlinks "
        "there, which admission cannot see)"
        if any(PurePosixPath(clean).is_relative_to(a) for a in allowed)
        else "a host directory is mounted writable into every pod that uses it"
    )
    raise HostPathError(
        f"{path} is not a host directory this cluster allows for scratch ({ADMIN_VALUE}: "
        f"{', '.join(allowed)}): {reason}"
    )
