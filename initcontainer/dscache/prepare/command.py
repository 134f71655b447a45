"""`dscache prepare`: wait for published versions, place them (scratch or cache), link them, export env.

Runs in every training pod, so it imports only the standard library and dscache's plain-dataclass
modules, does no network I/O and takes no lock.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dscache import output
from dscache.argtypes import seconds, size
from dscache.atomic import write_bytes_atomic
from dscache.cachepaths import CachePaths
from dscache.names import NameError_, parse_version_arg
from dscache.output import EXIT_FAILURE, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE
from dscache.pathcheck import dir_problem, file_problem
from dscache.prepare.envfile import build_env, render_exports
from dscache.prepare.links import LinkSpec, apply_links
from dscache.prepare.request import RequestError, Wanted, from_ref, from_versions
from dscache.prepare.scratch import Placement, place_on_scratch
from dscache.prepare.scratchpaths import ScratchPaths
from dscache.prepare.waiting import wait_published
from dscache.records import read_complete, read_ref

EXAMPLES = """\
  # an init container: wait up to an hour for what ref team.train points at, copy it to scratch
  dscache prepare --cache /var/lib/dscache/cache --links /dscache --ref team.train \\
      --scratch /var/lib/dscache/scratch --scratch-max-bytes 500Gi --wait 3600 --env-file /dscache/env.sh
  # in a shell
  eval "$(dscache prepare --cache ./cache --links ./links --version objects/thor=v1)"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache", required=True, type=Path, metavar="DIR", help="the cache volume (read only here)"
    )
    parser.add_argument(
        "--links", required=True, type=Path, metavar="DIR", help="where <dt>/<src> links are made"
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
    parser.add_argument("--scratch", type=Path, metavar="DIR", help="node-local dir to copy the versions to")
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
        help="never evict copies used in the last SECONDS: pods may still read them (default 3600)",
    )
    parser.add_argument(
        "--wait",
        type=seconds,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for publication (default 0; inf: no limit)",
    )
    parser.add_argument(
        "--env-file", type=Path, metavar="FILE", help="write `export` lines for the workload here"
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
    return next((f"{flag} {problem}" for flag, problem in checks if problem is not None), None)


def _request(args: argparse.Namespace, cache: CachePaths, links: Path) -> list[Wanted] | None:
    """The versions asked for (None: the ref does not exist yet); usage errors surface before any wait."""
    if args.ref is not None:
        ref = read_ref(cache, args.ref)
        if ref is None:
            return None
        wanted = from_ref(ref)
    else:
        wanted = from_versions([parse_version_arg(v) for v in args.versions])
    build_env(links, wanted)
    return wanted


def _timeout_message(args: argparse.Namespace, missing: list[str] | None) -> str:
    if missing is None:
        return f"timed out after {args.wait:g}s: ref {args.ref!r} does not exist in {args.cache}"
    lines = [f"timed out after {args.wait:g}s waiting for {len(missing)} version(s) to be published:"]
    lines += [f"  {m}" for m in missing]
    return "\n".join(lines)


def _result_json(env: dict[str, str], wanted: list[Wanted], placements: list[Placement]) -> str:
    versions = [
        {
            "dataType": p.key.data_type,
            "source": p.key.source,
            "version": p.key.version,
            "linkStrategy": w.strategy,
            "location": "scratch" if p.on_scratch else "cache",
            "target": str(p.path),
            "copied": p.copied,
        }
        for w, p in zip(wanted, placements, strict=True)
    ]
    warnings = [p.warning for p in placements if p.warning]
    return json.dumps({"env": env, "versions": versions, "warnings": warnings}, indent=2)


def _write_if_changed(path: Path, data: bytes) -> None:
    """Rewrite (tmp + fsync + rename) only when different: most pod starts find the same content."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    write_bytes_atomic(path, data)


def _prepare(args: argparse.Namespace) -> int:
    problem = _path_problem(args)
    if problem is not None:
        return output.error(problem, EXIT_USAGE)
    cache = CachePaths(args.cache.absolute())
    links = args.links.absolute()
    result = wait_published(cache, lambda: _request(args, cache, links), args.wait)
    if result.wanted is None or result.missing:
        missing = None if result.wanted is None else [f"{k} ({cache.version_dir(k)})" for k in result.missing]
        return output.error(_timeout_message(args, missing), EXIT_TIMEOUT)
    wanted = result.wanted
    env = build_env(links, wanted)
    records = {}
    for w in wanted:
        record = read_complete(cache.version_dir(w.key))
        if record is None:
            raise OSError(f"{w.key}: unreadable completion record in {cache.version_dir(w.key)}")
        records[w.key] = record
    if args.scratch is not None:
        placements = place_on_scratch(
            ScratchPaths(args.scratch.absolute()),
            cache,
            records,
            args.scratch_max_bytes,
            _log,
            keep_recent=args.scratch_keep_recent,
        )
    else:
        placements = [Placement(w.key, cache.version_dir(w.key), on_scratch=False) for w in wanted]
    for w, p in zip(wanted, placements, strict=True):
        output.debug(f"{w.key}: {w.strategy} link to {p.path} ({'scratch' if p.on_scratch else 'cache'})")
    apply_links(links, [LinkSpec(w.key, w.strategy, p.path) for w, p in zip(wanted, placements, strict=True)])
    exports = render_exports(env)
    if args.env_file is not None:
        _write_if_changed(args.env_file.absolute(), exports.encode())
    print(_result_json(env, wanted, placements) if args.json else exports, end="\n" if args.json else "")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    try:
        return _prepare(args)
    except (NameError_, RequestError) as exc:
        return output.error(str(exc), EXIT_USAGE)
    except BrokenPipeError:
        raise  # the CLI's: stdout closed early, exit 141
    except (OSError, ValueError) as exc:
        return output.error(str(exc), EXIT_FAILURE)
