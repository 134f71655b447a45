"""`dscache prepare`: wait for published versions, place them (scratch or cache), link them, export env.

Runs in every training pod, so it imports only the standard library and dscache's plain-dataclass
modules, does no network I/O and takes no lock.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dscache.api.names import NameError_, parse_version_arg
from dscache.api.sizes import parse_size
from dscache.prepare.envfile import build_env, render_exports
from dscache.prepare.links import LinkSpec, apply_links
from dscache.prepare.request import RequestError, Wanted, from_ref, from_versions
from dscache.prepare.scratch import Placement, place_on_scratch
from dscache.prepare.scratchpaths import ScratchPaths
from dscache.prepare.waiting import wait_published
from dscache.store.atomic import write_bytes_atomic
from dscache.store.paths import CachePaths
from dscache.store.records import read_complete, read_ref

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


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
    cache = CachePaths(args.cache.absolute())
    links = args.links.absolute()
    result = wait_published(cache, lambda: _request(args, cache, links), args.wait)
    if result.wanted is None or result.missing:
        missing = None if result.wanted is None else [f"{k} ({cache.version_dir(k)})" for k in result.missing]
        _log(_timeout_message(args, missing))
        return EXIT_TIMEOUT
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
        _log(f"error: {exc}")
        return EXIT_USAGE
    except (OSError, ValueError) as exc:
        _log(f"error: {exc}")
        return EXIT_FAILURE
