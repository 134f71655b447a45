"""`dscache verify --cache DIR`: exit 1 naming every version and path that differs from its record,
and how to repair it (`dscache install ... --repair`)."""

from __future__ import annotations

import argparse
import json
import sys

from dscache.cli.argtypes import path_arg
from dscache.cli.common import cache_dir_problem, fail, note_foreign
from dscache.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

SHOWN = 20
REPAIR_HINT = (
    "to repair a version, run its install again with --repair (dscache install -f FILE or --source ... "
    "--repair): only its damaged items are fetched, and a fresh copy replaces it atomically"
)
EXAMPLES = """\
  dscache verify --cache /data/cache
  dscache verify --cache /data/cache --json > report.json || echo "some version differs" """


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=path_arg, required=True, metavar="DIR", help="a cache directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from dscache.maintain.verify import verify_version
    from dscache.store.catalog import damaged_note, scan
    from dscache.store.paths import CachePaths

    problem = cache_dir_problem("--cache", args.cache)
    if problem is not None:
        return fail(problem, EXIT_USAGE)
    cache = CachePaths(args.cache)
    found = scan(cache)
    checks = [verify_version(cache, record.key) for record in found.records]
    note_foreign(found.foreign)
    bad = [c for c in checks if not c.ok]
    damaged = [str(d) for d in found.damaged]
    if args.json:
        print(
            json.dumps(
                {
                    "ok": not bad and not damaged,
                    "versions": [
                        {
                            "version": str(c.key),
                            "ok": c.ok,
                            "missing": c.missing,
                            "extra": c.extra,
                            "changed": c.changed,
                            "error": c.error,
                        }
                        for c in checks
                    ],
                    "damaged": damaged,
                },
                indent=2,
            )
        )
    else:
        for c in checks:
            if c.ok:
                print(f"ok       {c.key}")
                continue
            print(f"DIFFERS  {c.key}", file=sys.stderr)
            if c.error:
                print(f"  {c.error}", file=sys.stderr)
            for label, paths in (("missing", c.missing), ("extra", c.extra), ("changed", c.changed)):
                for path in paths[:SHOWN]:
                    print(f"  {label}: {path}", file=sys.stderr)
                if len(paths) > SHOWN:
                    print(f"  ... and {len(paths) - SHOWN} more {label}", file=sys.stderr)
        for where in found.damaged:
            print(f"DAMAGED  {damaged_note(where)}", file=sys.stderr)
        total = len(checks) + len(damaged)
        print(f"{len(checks) - len(bad)} of {total} version(s) intact")
        if bad:
            print(REPAIR_HINT, file=sys.stderr)
    return EXIT_FAILURE if bad or damaged else EXIT_OK
