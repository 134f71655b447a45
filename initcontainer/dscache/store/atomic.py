"""Crash-safe writes: tmp file in the same directory, fsync, rename, fsync the directory.

Readers of the cache never take a lock, so every file they read must appear whole or not at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    """Make a rename or create inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


TMP_NAME_KEEP = 200
"""Bytes of a file's name its temporary's name keeps: room for `.tmp.<pid>.<token>` within NAME_MAX."""


def tmp_name(name: str, token: str) -> str:
    """Pure: the name of a temporary written next to the file `name` before a rename onto it:
    `.<name>.tmp.<pid>.<token>`, `name` cut to its first `TMP_NAME_KEEP` bytes (file system encoding),
    so that any legal name (up to 255 bytes) gives a legal one."""
    kept = os.fsdecode(os.fsencode(name)[:TMP_NAME_KEEP])
    return f".{kept}.tmp.{os.getpid()}.{token}"


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Replace `path` with `data` so that readers see the old or the new content, never a mix.

    `durable=False` skips the two fsyncs where a later syncfs covers the file anyway (staging):
    each fsync on ext4 commits the journal and flushes other files' data with it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / tmp_name(path.name, os.urandom(4).hex())  # not `secrets`: start-up cost
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def write_json_atomic(
    path: Path, obj: Any, mode: int = 0o644, *, pretty: bool = True, durable: bool = True
) -> None:
    """Atomically write `obj` as key-sorted JSON; `pretty=False` for big machine-read files (the
    indenting encoder is pure Python, ten times slower on a 12,000-file inventory)."""
    text = (
        json.dumps(obj, indent=2, sort_keys=True)
        if pretty
        else json.dumps(obj, sort_keys=True, separators=(",", ":"))
    )
    write_bytes_atomic(path, (text + "\n").encode(), mode, durable=durable)


def read_json(path: Path) -> Any:
    """Read a JSON file written by `write_json_atomic` (or by a molmospaces producer)."""
    with open(path, "rb") as fh:
        return json.loads(fh.read())
