"""`dscache` command line: one thin argparse front over the subcommand modules.

Each subcommand module is imported only when it runs, so `dscache prepare` (every training pod) never
pays for boto3, huggingface_hub or pydantic. Every command takes `-q`/`-v` and reports through
`dscache.cli.output`: one prefix (`dscache: error: ...`), one line naming what to fix, the documented exit
code (0 ok, 1 failure, 2 usage or validation, 3 prepare timed out, 141 output pipe closed), JSON errors
with `--json`, and never a traceback (an unexpected exception is one line; `-v` adds the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from dscache import __version__
from dscache.cli import output
from dscache.cli.exits import EXIT_BROKEN_PIPE, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, exit_code
from dscache.errors import DscacheError

# subcommand -> (module with `add_arguments(parser)` and `run(args) -> int`, one-line help)

# subcommand -> (module with `add_arguments(parser)`, `run(args) -> int` and `EXAMPLES`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "install": ("dscache.cli.install", "download, verify and publish versions into a cache"),
    "prepare": ("dscache.cli.prepare", "link published versions at stable paths (init container)"),
    "status": ("dscache.cli.status", "show what a cache (or a scratch dir) holds"),
    "verify": ("dscache.cli.verify", "re-check published versions against their records"),
    "gc": ("dscache.cli.gc", "remove unreferenced old versions"),
    "release": ("dscache.cli.release", "drop a ref and remove the versions only it used"),
    "ls-remote": ("dscache.cli.lsremote", "list the versions a remote holds (and which a cache has)"),
    "publish": ("dscache.cli.publish", "pack a tree into archives and upload it (producer side)"),
    "demo": ("dscache.cli.demo", "build a local remote, install it, show the result (no network)"),
    "completion": ("dscache.cli.completion", "print a shell completion script (bash, zsh or fish)"),
}
LOGGING_FREE = frozenset({"prepare"})
"""Commands that never import `logging` (start-up time of the init container)."""


class _Parser(argparse.ArgumentParser):
    """The parser of `dscache` and of each subcommand: errors as one line, and no abbreviated flags
    (`--link` is not taken for `--links`, nor `--dry` for `--dry-run`)."""

    help_prog = ""
    """Whose --help to point at (the subcommand's, for errors the top-level parser reports)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        output.error(f"{message} (see '{self.help_prog or self.prog} --help')", EXIT_USAGE)
        self.exit(EXIT_USAGE)


def _verbosity_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "-q", "--quiet", action="count", default=default, help="less output: warnings and errors only"
    )
    parser.add_argument("-v", "--verbose", action="count", default=default, help="more output (debug lines)")


def _epilog(command: str, module: object) -> str:
    from dscache.cli.envvars import epilog_lines

    examples = str(getattr(module, "EXAMPLES", "")).strip("\n")
    parts = ["Examples:\n" + examples] if examples else []
    parts.append("\n".join(epilog_lines(command)))
    return "\n\n".join(parts)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that subcommand's arguments are registered (fast path)."""
    parser = _Parser(
        prog="dscache",
        description="Versioned dataset cache for Kubernetes training jobs.",
        epilog="Exit codes: 0 ok, 1 failure, 2 usage or validation error, 3 prepare timed out.\n"
        "Run 'dscache COMMAND --help' for a command's options, examples and environment variables.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dscache {__version__}")
    parser.help_prog = f"dscache {only}" if only else ""
    _verbosity_options(parser, 0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        if only is None or name == only:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            _verbosity_options(p, argparse.SUPPRESS)
            p.epilog = _epilog(name, module)
    return parser


def _wants_json(args: list[str]) -> bool:
    return "--json" in (args[: args.index("--")] if "--" in args else args)


INTERRUPTED = {
    "install": "interrupted: what it finished stays in staging; run the same install again to resume it",
}
"""What Ctrl-C leaves, per command that leaves something to resume (else just `interrupted`)."""


def _interrupted(args: argparse.Namespace) -> str:
    """Pure: the line for Ctrl-C during `args`' command; a dry run leaves nothing to resume."""
    return "interrupted" if getattr(args, "dry_run", False) else INTERRUPTED.get(args.command, "interrupted")


def _run(module_name: str, args: argparse.Namespace) -> int:
    """The command, with every escape turned into one line and an exit code."""
    try:
        code: int = importlib.import_module(module_name).run(args)
    except KeyboardInterrupt:
        return output.error(_interrupted(args), EXIT_INTERRUPTED)
    except DscacheError as err:  # one a command did not report itself: its message is safe to show
        return output.error(str(err), exit_code(err))
    except BrokenPipeError:  # a reader such as `head` went away: stop writing, say nothing more
        output.discard_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        return output.error(f"{where}{err.strerror or err}")
    except ImportError as err:  # a dependency is missing (e.g. the libarchive system library)
        return output.error(str(err))
    except Exception as err:
        if output.MODE.verbosity > 0:
            import traceback

            traceback.print_exc()
        return output.error(
            f"unexpected {type(err).__name__}: {err} (a bug: please report it; -v shows the traceback)"
        )
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    output.configure(json_errors=_wants_json(args_list), verbosity=0)
    only = next((a for a in args_list if not a.startswith("-")), None)
    args = build_parser(only if only in COMMANDS else None).parse_args(args_list)
    output.configure(json_errors=bool(getattr(args, "json", False)), verbosity=args.verbose - args.quiet)
    from dscache.cli.envvars import problems

    bad_env = problems(args.command, os.environ)
    if bad_env:
        return output.error(bad_env[0], EXIT_USAGE)
    if args.command not in LOGGING_FREE:
        from dscache.cli.logsetup import setup_logging

        setup_logging(output.MODE.verbosity)
    return _run(COMMANDS[args.command][0], args)


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
        except OSError as err:  # e.g. a closed pipe: the output is lost, say so by the exit code
            if output.is_broken_pipe(err):
                output.discard_stdout()
                code = code or EXIT_BROKEN_PIPE
            else:
                code = code or EXIT_FAILURE
    os._exit(code)


if __name__ == "__main__":
    entry()
