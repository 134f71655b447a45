"""`dscache demo [--dir DIR]`: publish, install and show a small dataset, entirely on local disk."""

from __future__ import annotations

import argparse
import shlex
import tempfile
from pathlib import Path

from dscache.cli import output
from dscache.cli.argtypes import path_arg
from dscache.cli.common import fail
from dscache.cli.exits import EXIT_OK, EXIT_USAGE
from dscache.cli.pathcheck import dir_problem

EXAMPLES = """\
  dscache demo                      # in a new temporary directory
  dscache demo --dir ./dscache-demo"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir", type=path_arg, metavar="DIR", help="work directory (default: a new temporary directory)"
    )


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.tree import Tree

    from dscache.cli.console import report_console
    from dscache.cli.demo_run import DEMO_VERSIONS, run_demo
    from dscache.cli.render import make_sink
    from dscache.install.pipeline import InstallError
    from dscache.store.paths import CachePaths
    from dscache.store.records import read_complete

    if args.dir is not None:
        problem = dir_problem(args.dir, create=True, write=True)
        if problem is not None:
            return fail(f"--dir {problem}", EXIT_USAGE)
    root = args.dir or Path(tempfile.mkdtemp(prefix="dscache-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    quiet = output.MODE.verbosity < 0  # -q: the demo runs and says nothing unless it fails
    console = report_console()
    if not quiet:
        console.print(
            f"[bold]dscache demo[/] in {escape(str(root))}: publishing 2 versions to a local remote, "
            "then installing\n"
        )
    # a rich bar on a terminal; else a line a second (the demo lasts a few); nothing with -q
    sink = make_sink(False, -1 if quiet else 1)
    try:
        result = run_demo(root.resolve(), sink)
    except InstallError as err:
        return fail(str(err))
    if quiet:
        return EXIT_OK
    cache = CachePaths(result.cache)
    tree = Tree(f"[bold]{escape(str(result.cache))}[/]")  # a path is text, not rich markup
    for key in DEMO_VERSIONS:
        version = cache.version_dir(key)
        record = read_complete(version)
        files = "?" if record is None else record.files  # as status and the published line count them
        node = tree.add(f"{key.rel}/  [dim]({files} files, read-only)[/]")
        for child in sorted(version.iterdir(), key=lambda c: (c.name.startswith("."), c.name))[:5]:
            node.add(child.name + ("/" if child.is_dir() else ""))
        node.add("...")
    tree.add(".dscache/refs/demo.json  [dim](what pods link; written last)[/]")
    console.print()
    console.print(tree)
    console.print()
    for step, seconds in result.timings.items():
        console.print(f"  {step:<24} {seconds:6.2f} s")
    links = root / "links"
    console.print("\n[bold]Try next:[/]")
    versions = " ".join(f"--version {k}" for k in DEMO_VERSIONS)
    cache_arg, links_arg = shlex.quote(str(result.cache)), shlex.quote(str(links))
    env_arg, source_arg = shlex.quote(str(root / "env.sh")), shlex.quote(Path(result.remote).as_uri())
    for command in (
        f"dscache status --cache {cache_arg}",
        f"dscache verify --cache {cache_arg}",
        f"dscache prepare --cache {cache_arg} --links {links_arg} --ref demo --env-file {env_arg}",
        f"dscache install --cache {cache_arg} --source {source_arg} {versions} --ref demo --json",
        f"dscache gc --cache {cache_arg} --keep 0 --dry-run",
    ):
        print(f"  {command}")
    return EXIT_OK
