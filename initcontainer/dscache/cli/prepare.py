"""`dscache prepare`: the argparse adapter of `dscache.prepare.run.prepare` (wait, place, link, export).

Runs in every training pod, so it imports only the standard library and dscache's plain-dataclass
modules, does no network I/O and takes no lock.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dscache.api.names import parse_version_arg
from dscache.api.sizes import parse_size
from dscache.cli.exits import EXIT_OK, exit_code
from dscache.prepare.run import PrepareRequest, PrepareTimeoutError, prepare


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", required=True, type=Path, help="the cache volume (read only here)")
    parser.add_argument("--links", required=True, type=Path, help="where <dt>/<src> links are made")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--ref", help="prepare what this ref (a DatasetCache) points at")
    what.add_argument(
        "--version",
        dest="versions",
        action="append",
        metavar="DT/SRC=VER",
        help="prepare this version with a directory link (repeatable)",
    )
    parser.add_argument("--scratch", type=Path, help="node-local dir to copy the versions to")
    parser.add_argument(
        "--scratch-max-bytes",
        type=_size,
        metavar="SIZE",
        help="LRU-evict scratch copies beyond this (e.g. 500Gi)",
    )
    parser.add_argument(
        "--scratch-keep-recent",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="never evict copies used in the last SECONDS: pods may still read them (default 3600)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for publication (default 0)",
    )
    parser.add_argument("--env-file", type=Path, help="write `export` lines for the workload here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _log(message: str) -> None:
    print(f"dscache prepare: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    try:
        request = PrepareRequest(
            cache=args.cache,
            links=args.links,
            ref=args.ref,
            versions=tuple(parse_version_arg(v) for v in args.versions or ()),
            scratch=args.scratch,
            scratch_max_bytes=args.scratch_max_bytes,
            scratch_keep_recent=args.scratch_keep_recent,
            wait=args.wait,
            env_file=args.env_file,
        )
        result = prepare(request, _log)
    except PrepareTimeoutError as exc:
        _log(str(exc))
        return exit_code(exc)
    except (OSError, ValueError) as exc:  # NameError_, RequestError: usage (2); the rest: failure (1)
        _log(f"error: {exc}")
        return exit_code(exc)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.exports, end="")
    return EXIT_OK
