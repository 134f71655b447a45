"""Running the `dscache` CLI in tests: in this process, as a real process, or as a non-root user.

`as_nobody` forks this process and drops to uid/gid 65534 before calling `main`, because a real
`setpriv`/`runuser` child could not start: the interpreter's virtualenv lives under /root (mode 0700).
The modules a command imports lazily are imported here first, so the child needs no file under /root.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import rich.console
import rich.progress
import rich.table
import rich.tree
import yaml

import dscache.api.spec
import dscache.cli.completion
import dscache.cli.demo
import dscache.cli.demo_run
import dscache.cli.dryrun
import dscache.cli.gc
import dscache.cli.install
import dscache.cli.lsremote
import dscache.cli.prepare
import dscache.cli.publish
import dscache.cli.release
import dscache.cli.status
import dscache.cli.verify
import dscache.install.pipeline
import dscache.maintain.gc
import dscache.maintain.verify
import dscache.publish.pack
import dscache.publish.upload
import dscache.remotes.factory
import dscache.remotes.file
import dscache.store.lock
from dscache.cli.app import main

PRELOADED = (
    dscache.cli.completion, dscache.cli.demo, dscache.cli.gc, dscache.cli.install,
    dscache.cli.publish, dscache.cli.release, dscache.cli.status, dscache.cli.verify,
    dscache.cli.demo_run, dscache.cli.dryrun, dscache.maintain.gc, dscache.install.pipeline,
    dscache.store.lock, dscache.publish.pack, dscache.cli.prepare, dscache.publish.upload,
    dscache.remotes.factory, dscache.remotes.file, dscache.api.spec,
    dscache.maintain.verify, rich.console, rich.progress, rich.table, rich.tree, yaml,
)  # fmt: skip
NOBODY = 65534


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in (self.out + self.err).splitlines() if line.strip()]


def run(*args: str) -> Result:
    """`dscache ARGS` in this process (argparse's SystemExit becomes the exit code)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def run_process(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """`python -m dscache ARGS` as a separate process (the real entry point, `os._exit` included)."""
    proc = subprocess.run(
        [sys.executable, "-m", "dscache", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def as_nobody(*args: str) -> Result:
    """`dscache ARGS` in a forked child running as uid/gid 65534 (this process must be root)."""
    assert os.geteuid() == 0, "as_nobody needs root to drop privileges"
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 99
            try:
                os.setgroups([])
                os.setresgid(NOBODY, NOBODY, NOBODY)
                os.setresuid(NOBODY, NOBODY, NOBODY)
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
                sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
                try:
                    code = main(list(args))
                except SystemExit as exc:
                    code = int(exc.code or 0)
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return Result(os.waitstatus_to_exitcode(status), out.read().decode(), err.read().decode())


@contextlib.contextmanager
def world_traversable_dir() -> Iterator[Path]:
    """A fresh directory that uid 65534 can reach (pytest's tmp_path sits under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="dscache-cli-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def assert_one_clean_line(result: Result, code: int, *needles: str) -> None:
    """Exit `code`, exactly one line of output, `dscache: error: ` first, each needle in it, no traceback."""
    assert result.code == code, result
    assert "Traceback" not in result.out + result.err, result.err
    assert len(result.lines) == 1, result.lines
    [line] = result.lines
    assert line.startswith("dscache: error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
