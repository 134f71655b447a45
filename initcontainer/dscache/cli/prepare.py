"""`dscache prepare`: the argparse adapter of `dscache.prepare.run.prepare` (wait, place, link, export).

Runs in every training pod, so it imports only the standard library and dscache's plain-dataclass
modules, does no network I/O and takes no lock.
"""

from __future__ import annotations

import argparse
import json

from dscache.api.names import parse_version_arg
from dscache.cli import output
from dscache.cli.argtypes import path_arg, seconds, size
from dscache.cli.exits import EXIT_OK, EXIT_USAGE, exit_code
from dscache.cli.pathcheck import dir_problem, file_problem
from dscache.errors import DscacheError
from dscache.prepare.holds import DEFAULT_MAX_AGE
from dscache.prepare.run import PrepareRequest, prepare
from dscache.store.ownpaths import own_link_problem, ref_keys
from dscache.store.paths import CachePaths

EXAMPLES = """\
  # an init container: wait up to an hour for what ref team.train points at, copy it to scratch
  dscache prepare --cache /var/lib/dscache/cache --links /dscache --ref team.train \\
      --scratch /var/lib/dscache/scratch --scratch-max-bytes 500Gi --wait 3600 --env-file /dscache/env.sh
  # in a shell
  eval "$(dscache prepare --cache ./cache --links ./links --version objects/thor=v1)"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache", required=True, type=path_arg, metavar="DIR", help="the cache volume (read only here)"
    )
    parser.add_argument(
        "--links",
        required=True,
        type=path_arg,
        metavar="DIR",
        help="where <dt>/<src> links are made (apart from --cache and --scratch; "
        "entries prepare did not create are never replaced)",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--ref", help="prepare what this ref (a DatasetCache) points at")
    what.add_argument(
        "--version",
        dest="versions",
        action="append",
        metavar="DT/SRC=VER",
        help="prepare this version with a directory link (repeatable)",
    )
    parser.add_argument(
        "--scratch", type=path_arg, metavar="DIR", help="node-local dir to copy the versions to"
    )
    parser.add_argument(
        "--scratch-max-bytes",
        type=size(0),
        metavar="SIZE",
        help="LRU-evict scratch copies beyond this (e.g. 500Gi)",
    )
    parser.add_argument(
        "--scratch-keep-recent",
        type=seconds,
        default=3600.0,
        metavar="SECONDS",
        help="never evict copies prepared in the last SECONDS, beside those links still point at "
        "(default 3600)",
    )
    parser.add_argument(
        "--scratch-hold-max",
        type=seconds,
        default=DEFAULT_MAX_AGE,
        metavar="SECONDS",
        help="this prepare's hold on its scratch copies lasts this long where its links cannot be seen "
        "(other pods judge it by this recorded limit, not their own; default 604800, a week)",
    )
    parser.add_argument(
        "--wait",
        type=seconds,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for publication (default 0; inf: no limit)",
    )
    parser.add_argument(
        "--env-file", type=path_arg, metavar="FILE", help="write `export` lines for the workload here"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _log(message: str) -> None:
    """Progress lines of the scratch placement (`warning: ...` ones are warnings)."""
    if message.startswith("warning: "):
        output.warning(message.removeprefix("warning: "))
    else:
        output.info(message)


def _path_problem(args: argparse.Namespace) -> str | None:
    """Why a path argument cannot be used (one line naming the flag), before any wait. Not --scratch:
    scratch is an accelerator, never a reason to fail (an unusable one falls back to the cache)."""
    checks = [
        ("--cache", dir_problem(args.cache)),
        ("--links", dir_problem(args.links, create=True, write=True)),
    ]
    if args.env_file is not None:
        checks.append(("--env-file", file_problem(args.env_file, write=True)))
    if checks[0][1] is None:
        checks.append(("--cache", _own_link_problem(args)))
    return next((f"{flag} {problem}" for flag, problem in checks if problem is not None), None)


def _own_link_problem(args: argparse.Namespace) -> str | None:
    """A symlink where dscache keeps its own directory for the versions asked for (or the ref's)."""
    cache = CachePaths(args.cache)
    keys = ref_keys(cache, [args.ref] if args.ref else [])
    for text in args.versions or ():
        try:
            keys.append(parse_version_arg(text))
        except ValueError:
            continue  # reported when the request is built
    return own_link_problem(cache, keys)


def run(args: argparse.Namespace) -> int:
    problem = _path_problem(args)
    if problem is not None:
        return output.error(problem, EXIT_USAGE)
    try:
        request = PrepareRequest(
            cache=args.cache,
            links=args.links,
            ref=args.ref,
            versions=tuple(parse_version_arg(v) for v in args.versions or ()),
            scratch=args.scratch,
            scratch_max_bytes=args.scratch_max_bytes,
            scratch_keep_recent=args.scratch_keep_recent,
            scratch_hold_max=args.scratch_hold_max,
            wait=args.wait,
            env_file=args.env_file,
        )
        result = prepare(request, _log)
    except BrokenPipeError:
        raise  # the CLI's: stdout closed early, exit 141
    except (OSError, ValueError, DscacheError) as exc:  # NameError_, RequestError: 2; timeout: 3; else 1
        return output.error(str(exc), exit_code(exc))
    for w, p in zip(result.wanted, result.placements, strict=True):
        output.debug(f"{w.key}: {w.strategy} link to {p.path} ({'scratch' if p.on_scratch else 'cache'})")
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.exports, end="")
    return EXIT_OK
