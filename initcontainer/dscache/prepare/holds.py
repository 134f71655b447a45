"""Holds: which scratch copies a links directory points at, so that no prepare evicts a copy in use.

Last use alone (lastuse.py) cannot protect a running workload: it is the time of the last `prepare`,
and a training pod reads its copy for days after its init container exited. Each prepare with
scratch therefore records a hold for its links directory:

```
<scratch>/.dscache/holds/<id>.json   {"node", "mountNamespace", "links", "linksDevice", "linksInode",
                                      "versions", "heldAt", "holdMax", "pid", "pidHost", "pending"}
```

Records are 0644 files in the sticky (1777) holds directory, like /tmp: any pod user may add its own,
none may alter or delete another user's. A prepare writes its hold (`pending`, with its `pid`)
before it evicts or copies anything, listing every version it means to link from scratch, and
rewrites it once its links are in place. A record that cannot be read (empty, not JSON, a
directory, a holds "directory" that is a file) may have named any copy: it holds every copy until
it is older, by its mtime, than the default hold-max, and each reader warns, naming the file.

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
A pending hold so seen lasts while its prepare's pid lives (the links are not made yet), where that
pid can be judged: `pidHost`, the prepare's `store.liveness.host_name()`, is this process's (the same
pid namespace: a mount namespace can be shared by processes of two pid namespaces). Otherwise (and for
a pending record without `pidHost`, written by an older dscache) the pid proves nothing and the hold
lasts its `holdMax`, as an unseen one does; a rerun of its prepare replaces it sooner.
Where it cannot be seen (another pod's links), the hold lasts the `holdMax` seconds its holder recorded
(its `--scratch-hold-max`, default 7 days; a record without one: the default) after it was
written; nobody's own limit releases another's hold, erring towards keeping data: a copy kept too
long only makes later versions fall back to the cache volume (slower, with a warning); a copy evicted
too early breaks a running job. A released hold's record is deleted by whoever finds it released.

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
from collections.abc import Iterable
from pathlib import Path

from dscache.api.names import NameError_, VersionKey, parse_version_arg
from dscache.prepare.scratchpaths import ScratchPaths
from dscache.prepare.shared import make_shared_dirs
from dscache.store.atomic import write_bytes_atomic
from dscache.store.liveness import host_name, pid_alive, same_pid_namespace

DEFAULT_MAX_AGE = 7 * 24 * 3600.0
HOLD_MODE = 0o644


@dataclasses.dataclass(frozen=True)
class Hold:
    """One links directory's hold: where it is and which copies on scratch its links point at.

    `hold_max`: seconds the hold lasts where its links cannot be seen; `pending`: written before the
    links were made, by process `pid` of identity `pid_host` (`store.liveness.host_name()`)."""

    node: str
    mount_ns: int
    links: str
    device: int
    inode: int
    versions: tuple[VersionKey, ...]
    held_at: float
    hold_max: float = DEFAULT_MAX_AGE
    pid: int = 0
    pending: bool = False
    pid_host: str = ""


@dataclasses.dataclass(frozen=True)
class Unreadable:
    """A hold record (or the holds directory) that cannot be read: `why`, and its mtime (epoch s)."""

    path: Path
    why: str
    mtime: float


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


def write_hold(
    scratch: ScratchPaths,
    links: Path,
    versions: Iterable[VersionKey],
    *,
    hold_max: float = DEFAULT_MAX_AGE,
    pending: bool = False,
) -> None:
    """Record that `links` points (`pending`: is about to point) at the scratch copies of `versions`
    (none: delete the record); `hold_max` is how long the hold lasts where it cannot be seen.

    A record that already says so is left as it is (the warm path reads it, writes nothing); a
    pending hold also leaves a settled record that already names every one of `versions`. Not
    fsync'ed: after a crash of the node, every pod's init container runs again and writes its hold
    anew. Raises OSError (scratch not writable, a record of another user at that name).
    """
    keys = tuple(sorted(set(versions)))
    st = os.stat(links)
    path = _hold_path(scratch, node_name(), str(links), st.st_dev, st.st_ino)
    if not keys:
        path.unlink(missing_ok=True)
        return
    pid, pid_host = (os.getpid(), host_name()) if pending else (0, "")
    want = Hold(
        node_name(),
        mount_namespace(),
        str(links),
        st.st_dev,
        st.st_ino,
        keys,
        0.0,
        hold_max,
        pid,
        pending,
        pid_host,
    )
    try:
        have = _parse(path.read_bytes())
    except OSError:
        have = None
    if have is not None:
        settled = dataclasses.replace(have, versions=tuple(sorted(have.versions)), held_at=0.0)
        if settled == want:
            return
        same_but_pending = dataclasses.replace(settled, pid=pid, pending=pending, pid_host=pid_host)
        covers = dataclasses.replace(same_but_pending, versions=keys) == want
        if pending and not have.pending and covers and set(keys) <= set(have.versions):
            return
    record = {
        "node": want.node,
        "mountNamespace": want.mount_ns,
        "links": want.links,
        "linksDevice": want.device,
        "linksInode": want.inode,
        "versions": [str(k) for k in keys],
        "heldAt": time.time(),
        "holdMax": hold_max,
        "pid": pid,
        "pidHost": pid_host,
        "pending": pending,
    }
    make_shared_dirs(path.parent)
    write_bytes_atomic(path, json.dumps(record).encode(), mode=HOLD_MODE, durable=False)


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
            hold_max=float(raw.get("holdMax", DEFAULT_MAX_AGE)),
            pid=int(raw.get("pid", 0)),
            pending=bool(raw.get("pending", False)),
            pid_host=str(raw.get("pidHost", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError, NameError_):
        return None


def _mtime(path: Path) -> float:
    try:
        return os.stat(path, follow_symlinks=False).st_mtime
    except OSError:
        return 0.0


def read_holds(scratch: ScratchPaths) -> tuple[list[tuple[Path, Hold]], list[Unreadable]]:
    """Every hold record on scratch: the readable ones, and those that cannot be read (names not
    ending in `.json`, and hidden ones such as a writer's temporary file, are not records)."""
    holds: list[tuple[Path, Hold]] = []
    unreadable: list[Unreadable] = []
    root = scratch.holds_root
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return holds, unreadable
    except OSError as exc:
        return holds, [Unreadable(root, exc.strerror or str(exc), _mtime(root))]
    for entry in entries:
        if not entry.name.endswith(".json") or entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            hold = _parse(path.read_bytes())
            why = "empty" if hold is None and path.stat().st_size == 0 else "not a hold record"
        except OSError as exc:
            hold, why = None, exc.strerror or str(exc)
        if hold is None:
            unreadable.append(Unreadable(path, why, _mtime(path)))
        else:
            holds.append((path, hold))
    return holds, unreadable


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


def _live(scratch: ScratchPaths, hold: Hold, now: float) -> list[VersionKey]:
    """The versions a hold still keeps: seen, by its links (a pending one: while its prepare runs,
    where its pid can be judged); unseen, for the `hold_max` its holder recorded."""
    recorded = list(hold.versions) if now - hold.held_at < hold.hold_max else []
    if not _visible(hold):
        return recorded
    if not _same_dir(hold):
        return []
    if hold.pending and hold.pid > 0:
        if not same_pid_namespace(hold.pid_host):
            return recorded
        if pid_alive(hold.pid):
            return list(hold.versions)
    return [k for k in hold.versions if _links_to(hold, k, scratch.version_dir(k))]


def unreadable_warning(bad: Unreadable) -> str:
    """Pure: what an unreadable hold means and what to do, e.g. `hold record /s/.dscache/holds/x.json
    cannot be read (empty): it counts as holding every copy on scratch until 2026-12-07T10:00:00Z (7
    days after its mtime); delete it if no links directory needs it`."""
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(bad.mtime + DEFAULT_MAX_AGE))
    what = "hold record" if bad.path.name.endswith(".json") else "holds directory"
    fix = "delete it" if what == "hold record" else f"replace it with a directory (`rm {bad.path}`)"
    return (
        f"{what} {bad.path} cannot be read ({bad.why}): it counts as holding every copy on scratch "
        f"until {until} ({DEFAULT_MAX_AGE / 86400:g} days after its mtime); {fix} if no links "
        "directory needs it"
    )


@dataclasses.dataclass(frozen=True)
class Held:
    """Live holds: version -> holders (`NODE:LINKS`), holders of every copy (unreadable records, as
    `unreadable PATH`), and one warning line per unreadable record."""

    by_key: dict[VersionKey, list[str]]
    everything: list[str]
    warnings: list[str]

    def of(self, key: VersionKey) -> list[str]:
        return sorted(self.by_key.get(key, []) + self.everything)


def holders(scratch: ScratchPaths, *, now: float, exclude: Path | None = None, prune: bool = False) -> Held:
    """The live holds on scratch, each judged by the limit its holder recorded (in a pod, NODE is the
    pod's name).

    `exclude` is the caller's own record (being replaced). With `prune`, records of released holds
    (and unreadable ones older than DEFAULT_MAX_AGE) are deleted (best effort: another user's record
    in the sticky holds directory stays until its owner's turn).
    """
    held: dict[VersionKey, list[str]] = {}
    records, unreadable = read_holds(scratch)
    for path, hold in records:
        if path == exclude:
            continue
        live = _live(scratch, hold, now)
        if not live and prune:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        for key in live:
            held.setdefault(key, []).append(f"{hold.node}:{hold.links}")
    everything: list[str] = []
    warnings: list[str] = []
    for bad in unreadable:
        if bad.path == exclude:
            continue
        if now - bad.mtime < DEFAULT_MAX_AGE:
            everything.append(f"unreadable {bad.path}")
            warnings.append(unreadable_warning(bad))
        elif prune and bad.path != scratch.holds_root:
            with contextlib.suppress(OSError):
                bad.path.unlink(missing_ok=True)
    return Held({key: sorted(names) for key, names in held.items()}, everything, warnings)
