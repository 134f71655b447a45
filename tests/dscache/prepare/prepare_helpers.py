"""Helpers for the prepare tests and `bench/bench_prepare.py`.

Published versions are built straight through the cache contract (no installer needed): a tree is
made read-only, given its inventory and completion record, and renamed into `<cache>/<dt>/<src>/<ver>/`
in one step. The CLI runs either in this process (fast) or as a real separate process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dscache.api.names import parse_version_arg
from dscache.cli.app import main
from dscache.store.atomic import write_json_atomic
from dscache.store.paths import INVENTORY, CachePaths
from dscache.store.records import CompleteRecord, Ref, RefEntry


def staging_dir(cache: Path) -> Path:
    """A fresh directory on the cache volume to build a version in."""
    path = CachePaths(cache).staging_root / secrets.token_hex(6)
    path.mkdir(parents=True)
    return path


def publish_tree(cache: Path, version: str, tree: Path, installed_at: str = "2026-01-01T00:00:00Z") -> Path:
    """Publish the directory `tree` (on the same filesystem) as `version` (`DT/SRC=VER`)."""
    key = parse_version_arg(version)
    files: dict[str, int] = {}
    links: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, tree)
            if os.path.islink(path):
                links[rel] = os.readlink(path)
            else:
                files[rel] = os.path.getsize(path)
                os.chmod(path, 0o444)
    write_json_atomic(tree / INVENTORY, {"files": files, "links": links}, mode=0o444)
    CompleteRecord(
        data_type=key.data_type,
        source=key.source,
        version=key.version,
        remote="file:///test-remote",
        layout="files",
        files=len(files) + len(links),
        bytes=sum(files.values()),
        installed_at=installed_at,
    ).write(tree)
    for dirpath, dirnames, _ in os.walk(tree):  # like the installer: directories below the top read-only
        for name in dirnames:
            if not os.path.islink(os.path.join(dirpath, name)):
                os.chmod(os.path.join(dirpath, name), 0o555)
    final = CachePaths(cache).version_dir(key)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.rename(tree, final)
    return final


def publish_version(
    cache: Path, version: str, files: dict[str, bytes], links: dict[str, str] | None = None
) -> Path:
    """Publish `files` (relative path -> content) and `links` (relative path -> target) as `version`."""
    tree = staging_dir(cache)
    for rel, content in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(content)
    for rel, target in (links or {}).items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, tree / rel)
    return publish_tree(cache, version, tree)


def write_ref(cache: Path, name: str, entries: list[RefEntry]) -> None:
    Ref(name=name, versions=entries).write(CachePaths(cache))


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Dirs:
    cache: Path
    scratch: Path
    links: Path

    def args(self, *extra: str, scratch: bool = True, links: Path | None = None) -> list[str]:
        base = ["prepare", "--cache", str(self.cache), "--links", str(links or self.links)]
        return base + (["--scratch", str(self.scratch)] if scratch else []) + list(extra)


def run_cli(*args: str) -> Result:
    """Run `dscache ARGS` in this process (fast; for single-process behaviour)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def cli_command(*args: str) -> list[str]:
    """The real `dscache` CLI as a separate process."""
    return [sys.executable, "-m", "dscache.cli.app", *args]


def run_proc(*args: str, timeout: float = 60) -> Result:
    proc = subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)
