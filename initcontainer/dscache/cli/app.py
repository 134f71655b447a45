"""`dscache` command line: one thin argparse front over the subcommand modules.

Each subcommand module is imported only when it runs, so `dscache prepare` (every training pod) never
pays for boto3, huggingface_hub or pydantic.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from dscache import __version__
from dscache.cli.exits import EXIT_FAILURE, EXIT_USAGE, exit_code
from dscache.errors import DscacheError

# subcommand -> (module with `add_arguments(parser)` and `run(args) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "install": ("dscache.cli.install", "download, verify and publish versions into a cache"),
    "prepare": ("dscache.cli.prepare", "link published versions at stable paths (init container)"),
    "status": ("dscache.cli.status", "show what a cache (or a scratch dir) holds"),
    "verify": ("dscache.cli.verify", "re-check published versions against their records"),
    "gc": ("dscache.cli.gc", "remove unreferenced old versions"),
    "release": ("dscache.cli.release", "drop a ref and remove the versions only it used"),
    "publish": ("dscache.cli.publish", "pack a tree into archives and upload it (producer side)"),
    "demo": ("dscache.cli.demo", "build a local remote, install it, show the result (no network)"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that subcommand's arguments are registered (fast path)."""
    parser = _Parser(prog="dscache", description="Versioned dataset cache for Kubernetes training jobs.")
    parser.add_argument("--version", action="version", version=f"dscache {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    only = args_list[0] if args_list and args_list[0] in COMMANDS else None
    args = build_parser(only).parse_args(args_list)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        code: int = module.run(args)
    except KeyboardInterrupt as err:
        print("dscache: interrupted", file=sys.stderr)
        return exit_code(err)
    except DscacheError as err:  # one a command did not report itself: its message is safe to show
        print(f"dscache: error: {err}", file=sys.stderr)
        return exit_code(err)
    return code


def entry() -> NoReturn:
    """Console entry point: `main`, then exit without tearing the interpreter down.

    Why: freeing every imported module and object one by one (pydantic, urllib3, libarchive, the
    install's file lists) costs 40-130 ms of CPU after an install that itself takes under a second.
    Nothing is lost by skipping it: every file the command writes is already renamed into place and
    synced, the commands use context managers for their temporary files, and stdio and logging are
    flushed here.
    """
    code = main()
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # e.g. a closed pipe: the output is lost, say so by the exit code
            code = code or EXIT_FAILURE
    os._exit(code)


if __name__ == "__main__":
    entry()
