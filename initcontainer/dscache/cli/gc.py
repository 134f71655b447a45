"""`dscache gc --cache DIR --keep N`: remove unreferenced versions beyond the newest N per source."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dscache.cli.common import add_protect_argument, fail, run_locked
from dscache.cli.exits import EXIT_OK, EXIT_USAGE, exit_code
from dscache.store.paths import CachePaths


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=Path, required=True, help="a cache directory")
    p.add_argument("--keep", type=int, required=True, help="unreferenced versions kept per source")
    add_protect_argument(p)
    p.add_argument("--dry-run", action="store_true", help="only show what would be removed")
    p.add_argument(
        "--staging-max-age",
        type=float,
        default=7 * 24 * 3600,
        metavar="SECONDS",
        help="also remove abandoned install staging untouched this long (default 7 days)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--lock-timeout", type=float, default=600.0, help="seconds to wait for another writer")


def run(args: argparse.Namespace) -> int:
    from dscache.api.names import NameError_, parse_version_arg
    from dscache.maintain.gc import GcPlan, collect

    if args.keep < 0:
        return fail("--keep must be >= 0", EXIT_USAGE)
    try:
        protect = [parse_version_arg(v) for v in args.protect]
    except NameError_ as err:
        return fail(str(err), exit_code(err))
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
