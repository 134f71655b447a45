"""`dscache gc --cache DIR --keep N`: remove unreferenced versions beyond the newest N per source."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dscache.argtypes import integer, seconds
from dscache.cachepaths import CachePaths
from dscache.commands import (
    EXIT_OK,
    EXIT_USAGE,
    add_lock_timeout_argument,
    add_protect_argument,
    fail,
    run_locked,
)

EXAMPLES = """\
  dscache gc --cache /data/cache --keep 2 --dry-run
  dscache gc --cache /data/cache --keep 0 --protect objects/thor=20250101 --json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=Path, required=True, metavar="DIR", help="a cache directory")
    p.add_argument(
        "--keep", type=integer(0), required=True, metavar="N", help="unreferenced versions kept per source"
    )
    add_protect_argument(p)
    p.add_argument("--dry-run", action="store_true", help="only show what would be removed")
    p.add_argument(
        "--staging-max-age",
        type=seconds,
        default=7 * 24 * 3600,
        metavar="SECONDS",
        help="also remove abandoned install staging untouched this long (default 7 days; inf: never)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_lock_timeout_argument(p)


def run(args: argparse.Namespace) -> int:
    from dscache.gc import GcPlan, collect
    from dscache.names import NameError_, parse_version_arg

    try:
        protect = [parse_version_arg(v) for v in args.protect]
    except NameError_ as err:
        return fail(str(err), EXIT_USAGE)
    plan = run_locked(
        args.cache,
        args.lock_timeout,
        lambda cache: collect(
            cache, args.keep, protect, dry_run=args.dry_run, staging_max_age=args.staging_max_age
        ),
    )
    if not isinstance(plan, GcPlan):
        return plan
    staging_root = CachePaths(args.cache).staging_root
    if args.json:
        print(
            json.dumps(
                {
                    "dryRun": args.dry_run,
                    "removed": [str(k) for k in plan.remove],
                    "kept": [str(k) for k in plan.keep],
                    "staleStaging": [str(p.relative_to(staging_root)) for p in plan.stale_staging],
                },
                indent=2,
            )
        )
    else:
        verb = "would remove" if args.dry_run else "removed"
        for key in plan.remove:
            print(f"{verb} {key}")
        for stage in plan.stale_staging:
            print(f"{verb} abandoned staging {stage.relative_to(staging_root)}")
        print(f"{verb} {len(plan.remove)} version(s), kept {len(plan.keep)}")
    return EXIT_OK
