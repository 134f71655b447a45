"""Launch one "container": a private mount namespace with the pod's volumes bind-mounted at their
mountPaths, then exec of the entrypoint, so paths inside the pod spec work unchanged on this host.

Run as `python3 -m dscache_testbed.container SPEC.json` by the node agent. The mounts are private to
the new namespace; only missing mountpoints (empty dirs/files) appear on the host, and they are
recorded in the bed's `created-mountpoints` file so `hack/testbed down` removes them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
from pathlib import Path

CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, flags: int) -> None:
    _check(
        _libc.mount(source.encode() if source else None, target.encode(), None, ctypes.c_ulong(flags), None),
        f"mount {source} -> {target}",
    )


def _ensure_target(target: Path, is_dir: bool, created_log: Path) -> None:
    """Create a missing mountpoint, recording every path created so it can be removed later."""
    if target.exists() or target.is_symlink():
        return
    missing = []
    p = target
    while not p.exists():
        missing.append(p)
        p = p.parent
    for m in reversed(missing):
        if m == target and not is_dir:
            m.touch()
        else:
            m.mkdir()
        with open(created_log, "a") as fh:
            fh.write(f"{m}\n")


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    created_log = Path(spec["createdLog"])
    try:
        _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _mount(None, "/", MS_REC | MS_PRIVATE)
        for m in sorted(spec["mounts"], key=lambda m: len(Path(m["target"]).parts)):
            source, target = m["source"], Path(m["target"])
            _ensure_target(target, os.path.isdir(source), created_log)
            _mount(source, str(target), MS_BIND | MS_REC)
            if m.get("readOnly"):
                _mount(None, str(target), MS_BIND | MS_REMOUNT | MS_RDONLY)
        workdir = Path(spec["workingDir"])
        workdir.mkdir(parents=True, exist_ok=True)
        os.chdir(workdir)
    except OSError as e:
        print(f"testbed: cannot set up container: {e}", file=sys.stderr, flush=True)
        return 128
    argv: list[str] = spec["argv"]
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as e:
        print(f"testbed: exec {argv[0]!r} failed: {e}", file=sys.stderr, flush=True)
        return 127 if isinstance(e, FileNotFoundError) else 126
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
