"""A version's whole journey as a user runs it: install -> verify -> prepare (directory links, perFile
links, scratch copies), and what each place shows (names as bytes, contents, modes).

The CLI runs in this process, or (`env` given) as a separate process with exactly that environment,
e.g. another locale.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.publish.pack import is_bookkeeping
from dscache.store.paths import CachePaths
from dscache.store.records import Ref, RefEntry

_CLI = "import sys; from dscache.cli.app import main; sys.exit(main(sys.argv[1:]))"
VIEWS = ("cache", "directory", "perFile", "scratch")


@dataclass(frozen=True)
class Run:
    """Exit code and stderr of one CLI run."""

    code: int
    stderr: str


def cli(args: list[str], env: dict[str, str] | None = None, umask: int = -1) -> Run:
    """Run `dscache ARGS` here (stderr not captured) or, with `env`, in a child process (with `umask`)."""
    if env is None:
        return Run(main(args), "")
    proc = subprocess.run(
        [sys.executable, "-c", _CLI, *args],
        env=env,
        umask=umask,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Run(proc.returncode, proc.stderr)


def child_env(**extra: str | None) -> dict[str, str]:
    """This process's environment without locale variables, plus `extra` (None removes a variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k not in ("LANG", "LANGUAGE")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def install(
    cache: Path,
    remote: Path | str,
    key: VersionKey,
    env: dict[str, str] | None = None,
    *,
    layout: str = "archives",
    umask: int = -1,
    extra: tuple[str, ...] = (),
) -> Run:
    """Install `key` from `remote` (a local directory, or a URL), with `extra` arguments."""
    source = remote if isinstance(remote, str) else f"file://{remote}"
    args = ["install", "--cache", str(cache), "--source", source, "--layout", layout, "--version", str(key)]
    return cli([*args, *extra], env, umask)


def verify(cache: Path, env: dict[str, str] | None = None) -> Run:
    return cli(["verify", "--cache", str(cache)], env)


def prepare(
    cache: Path,
    links: Path,
    key: VersionKey,
    strategy: str,
    scratch: Path | None,
    env: dict[str, str] | None = None,
) -> Run:
    """`dscache prepare` of `key` with link `strategy` (directory or perFile), optionally via scratch."""
    name = f"roundtrip-{strategy.lower()}"
    entry = RefEntry(key.data_type, key.source, key.version, link_strategy=strategy)
    Ref(name=name, versions=[entry]).write(CachePaths(cache))
    args = ["prepare", "--cache", str(cache), "--links", str(links), "--ref", name]
    if scratch is not None:
        args += ["--scratch", str(scratch)]
    return cli(args, env)


def view(root: Path) -> dict[bytes, bytes | None]:
    """{name bytes relative to `root`: file content through any links | None for a directory}, the
    installer's bookkeeping at the top left out."""
    out: dict[bytes, bytes | None] = {}
    top = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, top)
            if dirpath == top and is_bookkeeping(os.fsdecode(name)):
                continue
            out[rel] = None if os.path.isdir(full) else Path(os.fsdecode(full)).read_bytes()
    return out


def modes(root: Path) -> dict[bytes, int]:
    """{name bytes: permission bits of the file, through any links} of every non-directory below `root`."""
    out: dict[bytes, int] = {}
    top = os.fsencode(root)
    for dirpath, _dirnames, filenames in os.walk(top, followlinks=False):
        for name in filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, top)] = stat.S_IMODE(os.stat(full).st_mode)
    return out


@dataclass(frozen=True)
class Journey:
    """Where one installed version shows up: the cache itself and each way `prepare` exposes it."""

    install: Run
    verify: Run | None
    places: dict[str, Path]


def journey(
    tmp: Path,
    remote: Path | str,
    key: VersionKey,
    env: dict[str, str] | None = None,
    *,
    layout: str = "archives",
    umask: int = -1,
) -> Journey:
    """Install `key` from `remote` (as `install`), verify it, and prepare it in each of `VIEWS`."""
    cache = tmp / "cache"
    installed = install(cache, remote, key, env, layout=layout, umask=umask)
    if installed.code != 0:
        return Journey(installed, None, {})
    checked = verify(cache, env)
    places = {"cache": CachePaths(cache).version_dir(key)}
    for view_name, strategy, scratch in (
        ("directory", "directory", None),
        ("perFile", "perFile", None),
        ("scratch", "directory", tmp / "scratch"),
    ):
        links = tmp / f"links-{view_name}"
        prepared = prepare(cache, links, key, strategy, scratch, env)
        assert prepared.code == 0, f"prepare ({view_name}) failed: {prepared.stderr}"
        places[view_name] = links / key.data_type / key.source
    assert os.path.realpath(places["scratch"]).startswith(str(tmp / "scratch"))
    return Journey(installed, checked, places)
