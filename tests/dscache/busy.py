"""Files that cannot be deleted yet, like a file a pod still holds open on NFS.

On NFS such a file becomes `.nfsXXXX`: unlinking it fails (EBUSY) and its directory stays non-empty
(ENOTEMPTY) until the file is closed. Simulated with the immutable attribute (`chattr +i`): unlinking
fails with EPERM, even for root, and the directory holding the file stays non-empty the same way.
Needs root and a filesystem with attributes (ext4, xfs, btrfs); `pin` checks that it took effect.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def pin(path: Path) -> None:
    """Make the file `path` undeletable until `unpin_all`."""
    subprocess.run(["chattr", "+i", str(path)], check=True)
    with pytest.raises(PermissionError):  # the simulation works on this filesystem
        os.unlink(path)


def unpin_all(root: Path) -> None:
    """Make every file below `root` deletable again (the pod closed its files)."""
    subprocess.run(["chattr", "-R", "-f", "-i", str(root)], check=False)


@contextlib.contextmanager
def unpinned_at_exit(root: Path) -> Iterator[None]:
    """Whatever the test pins below `root` is unpinned afterwards, so that the tmp dir can be removed."""
    try:
        yield
    finally:
        unpin_all(root)
