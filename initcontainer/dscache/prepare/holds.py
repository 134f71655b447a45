"""Holds: which scratch copies a links directory points at, so that no prepare evicts a copy in use.

Last use alone (lastuse.py) cannot protect a running workload: it is the time of the last `prepare`,
and a training pod reads its copy for days after its init container exited. Each prepare with
scratch therefore records a hold for its links directory:

```
<scratch>/.dscache/holds/<id>.json   {"node", "mountNamespace", "links", "linksDevice", "linksInode",
                                      "versions", "heldAt"}
```

`node` is the uname node name (in a pod, the pod's name; pods on the host network: the node's), and
`id` hashes it with the links directory's path and its device and inode, so a pod's restarted init
container (same emptyDir) replaces its own hold and every other links directory has its own. A hold
lists the versions whose links point at scratch; a prepare that places none deletes it.

When is a hold released? The init container exits before the workload starts, so no process of
ours lives as long as the pod, and a pod cannot see another pod's end: its links emptyDir (which
the kubelet deletes with the pod) is not mounted in other pods, and the init container has no API
access (its service account token is masked). The options, and why this one:
- a lease refreshed while the pod runs needs a process for the pod's lifetime (a sidecar): not in
  the init container's power;
- hard links from the links emptyDir into the copy (hold by link count) fail across file systems,
  and a hostPath scratch is usually another disk than the kubelet's emptyDirs;
- the links directory's existence is decisive where it can be seen: same node name and the same
  mount namespace (shells on one machine; never two containers). Then the hold lasts while the
  directory at the recorded path is the recorded one (same device and inode) and the version's link
  in it still resolves to the copy (a per-file tree counts as in use).
Where it cannot be seen (another pod's links), the hold lasts `max_age` seconds after it was written
(`--scratch-hold-max`, default 7 days), erring towards keeping data: a copy kept too long only makes
later versions fall back to the cache volume (slower, with a warning); a copy evicted too early
breaks a running job. A released hold's record is deleted by whoever finds it released.

Holds matter where pods share scratch (a hostPath, one per node) and for shells; an EmptyDir scratch
is its pod's alone. Exact release for pods would need a process living as long as the pod (a native
sidecar holding a flock on its hold, which other pods can test across mount namespaces): an operator
change, not made here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

from dscache.api.names import NameError_, VersionKey, parse_version_arg
from dscache.prepare.scratchpaths import ScratchPaths
from dscache.prepare.shared import MARKER_MODE, make_shared_dirs
from dscache.store.atomic import write_bytes_atomic

DEFAULT_MAX_AGE = 7 * 24 * 3600.0


@dataclasses.dataclass(frozen=True)
class Hold:
    """One links directory's hold: where it is and which copies on scratch its links point at."""

    node: str
    mount_ns: int
    links: str
    device: int
    inode: int
    versions: tuple[VersionKey, ...]
    held_at: float


def node_name() -> str:
    return os.uname().nodename


def mount_namespace() -> int:
    """This process's mount namespace (0 where /proc has none): paths mean the same within one."""
    try:
        return os.stat("/proc/self/ns/mnt").st_ino
    except OSError:
        return 0


def _hold_path(scratch: ScratchPaths, node: str, links: str, device: int, inode: int) -> Path:
    digest = hashlib.sha256(f"{node}\0{links}\0{device}\0{inode}".encode()).hexdigest()[:32]
    return scratch.holds_root / f"{digest}.json"


def own_hold_path(scratch: ScratchPaths, links: Path) -> Path | None:
    """The record of `links`' hold (None while `links` does not exist: it has none)."""
    try:
        st = os.stat(links)
    except OSError:
        return None
    return _hold_path(scratch, node_name(), str(links), st.st_dev, st.st_ino)


def write_hold(scratch: ScratchPaths, links: Path, versions: list[VersionKey]) -> None:
    """Record that `links` points at the scratch copies of `versions` (none: delete the record).

    A record that already says so is left as it is (the warm path reads it, writes nothing): `heldAt`
    is the first prepare that made the hold. Not fsync'ed: after a crash of the node, every pod's
    init container runs again and writes its hold anew. Raises OSError (scratch not writable, a
    record of another user at that name).
    """
    st = os.stat(links)
    path = _hold_path(scratch, node_name(), str(links), st.st_dev, st.st_ino)
    if not versions:
        path.unlink(missing_ok=True)
        return
    want = Hold(
        node_name(), mount_namespace(), str(links), st.st_dev, st.st_ino, tuple(sorted(versions)), 0.0
    )
    try:
        have = _parse(path.read_bytes())
    except OSError:
        have = None
    if (
        have is not None
        and dataclasses.replace(have, versions=tuple(sorted(have.versions)), held_at=0.0) == want
    ):
        return
    record = {
        "node": node_name(),
        "mountNamespace": mount_namespace(),
        "links": str(links),
        "linksDevice": st.st_dev,
        "linksInode": st.st_ino,
        "versions": sorted(str(k) for k in versions),
        "heldAt": time.time(),
    }
    make_shared_dirs(path.parent)
    write_bytes_atomic(path, json.dumps(record).encode(), mode=MARKER_MODE, durable=False)


def _parse(data: bytes) -> Hold | None:
    try:
        raw = json.loads(data)
        return Hold(
            node=str(raw["node"]),
            mount_ns=int(raw["mountNamespace"]),
            links=str(raw["links"]),
            device=int(raw["linksDevice"]),
            inode=int(raw["linksInode"]),
            versions=tuple(parse_version_arg(str(v)) for v in raw["versions"]),
            held_at=float(raw["heldAt"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError, NameError_):
        return None


def read_holds(scratch: ScratchPaths) -> list[tuple[Path, Hold]]:
    """Every readable hold record on scratch (unreadable or foreign files are skipped)."""
    holds: list[tuple[Path, Hold]] = []
    try:
        entries = list(os.scandir(scratch.holds_root))
    except FileNotFoundError:
        return holds
    for entry in entries:
        if not entry.name.endswith(".json") or entry.name.startswith("."):
            continue
        try:
            hold = _parse(Path(entry.path).read_bytes())
        except OSError:
            continue
        if hold is not None:
            holds.append((Path(entry.path), hold))
    return holds


def _visible(hold: Hold) -> bool:
    """Whether this process sees the hold's links directory as its holder did (same node and mount
    namespace): then what is at its path tells whether the holder is still there."""
    return hold.node == node_name() and hold.mount_ns == mount_namespace() != 0


def _same_dir(hold: Hold) -> bool:
    try:
        st = os.stat(hold.links)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (hold.device, hold.inode)


def _links_to(hold: Hold, key: VersionKey, copy: Path) -> bool:
    """Whether the hold's link of `key` still uses `copy` (a per-file tree: assumed so)."""
    link = Path(hold.links, key.data_type, *key.source.split("/"))
    if link.is_symlink():
        return os.path.realpath(link) == os.path.realpath(copy)
    return link.is_dir()


def holders(
    scratch: ScratchPaths, *, max_age: float, now: float, exclude: Path | None = None, prune: bool = False
) -> dict[VersionKey, list[str]]:
    """Versions live holds keep on scratch -> their holders, each `NODE:LINKS` (in a pod, NODE is the
    pod's name).

    `exclude` is the caller's own record (being replaced). With `prune`, records of released holds are
    deleted (best effort: another user's record in the sticky holds directory stays until its owner's
    turn).
    """
    held: dict[VersionKey, list[str]] = {}
    for path, hold in read_holds(scratch):
        if path == exclude:
            continue
        if _visible(hold):
            live = [
                k for k in hold.versions if _same_dir(hold) and _links_to(hold, k, scratch.version_dir(k))
            ]
        else:
            live = list(hold.versions) if now - hold.held_at < max_age else []
        if not live and prune:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        for key in live:
            held.setdefault(key, []).append(f"{hold.node}:{hold.links}")
    return {key: sorted(names) for key, names in held.items()}
