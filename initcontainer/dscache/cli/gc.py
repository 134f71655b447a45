"""`dscache gc --cache DIR --keep N`: remove unreferenced versions beyond the N highest version names
per source (`api/versionorder.py`).

Entries that cannot be deleted yet (a file a pod still holds open on NFS) are left in the trash with a
warning per entry and listed under `left` in `--json`; the exit code stays 0, since the next gc (or
release) finishes them once the file is released, and a failed gc would fail the installer Job it
runs in.

`freedBytes` is the content of the files whose last link the removals took (not the versions'
apparent sizes, since versions share files), `freedDiskBytes` the space those files took on disk
(allocated blocks, as `du` counts: what the file system got back); the last line of the text output
gives both, labelled (a dry run: what removing them would free).

A version or abandoned staging dir that cannot be moved to the trash (a read-only mount, the trash on
another file system) is left in place, whole: gc removes the others, gives its summary, then one
`dscache: error:` line per such path with the reason (`--json`: under `notRemoved`), exit 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dscache.api.versionorder import KEEP_RULE
from dscache.cli import output
from dscache.cli.argtypes import integer, path_arg, seconds
from dscache.cli.common import add_lock_timeout_argument, add_protect_argument, fail, note_foreign, run_locked
from dscache.cli.exits import EXIT_FAILURE, EXIT_OK, exit_code
from dscache.store.paths import CachePaths
from dscache.store.staged import version_of_rel

if TYPE_CHECKING:
    from dscache.store.deletion import Leftover

EXAMPLES = """\
  dscache gc --cache /data/cache --keep 2 --dry-run
  dscache gc --cache /data/cache --keep 0 --protect objects/thor=20250101 --json"""


def warn_left(left: Sequence[Leftover], root: Path) -> None:
    """One `dscache: warning:` line on stderr per entry left for a later run."""
    for leftover in left:
        output.warning(
            f"{leftover.describe(root)} (a file still open on some node? "
            "the next gc or release deletes it once it is closed)"
        )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=path_arg, required=True, metavar="DIR", help="a cache directory")
    p.add_argument(
        "--keep",
        type=integer(0),
        required=True,
        metavar="N",
        help=f"unreferenced versions kept per source: {KEEP_RULE}",
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


def _stage_version(stage: Path, staging_root: Path) -> str:
    """A staging dir's version, `DT/SRC=VER` as everywhere else."""
    return version_of_rel(stage.relative_to(staging_root).as_posix())


def run(args: argparse.Namespace) -> int:
    from dscache.api.names import NameError_, parse_version_arg
    from dscache.maintain.gc import GcPlan, collect
    from dscache.store.ownpaths import removal_writes

    try:
        protect = [parse_version_arg(v, "--protect") for v in args.protect]
        in_use = [parse_version_arg(v, "--in-use") for v in args.in_use]
    except NameError_ as err:
        return fail(str(err), exit_code(err))
    plan = run_locked(
        args.cache,
        args.lock_timeout,
        lambda cache, fence: collect(
            cache,
            args.keep,
            fence,
            protect=protect,
            in_use=in_use,
            dry_run=args.dry_run,
            staging_max_age=args.staging_max_age,
        ),
        removal_writes("gc", dry_run=args.dry_run),
    )
    if not isinstance(plan, GcPlan):
        return plan
    from dscache.store.catalog import scan

    paths = CachePaths(args.cache)
    staging_root = paths.staging_root
    note_foreign(scan(paths).foreign)
    warn_left(plan.left, paths.root)
    if args.json:
        print(
            json.dumps(
                {
                    "dryRun": args.dry_run,
                    "removed": [str(k) for k in plan.remove],
                    "kept": [str(k) for k in plan.keep],
                    "staleStaging": [
                        {"version": _stage_version(p, staging_root), "path": str(p)}
                        for p in plan.stale_staging
                    ],
                    "left": [leftover.as_json(paths.root) for leftover in plan.left],
                    "notRemoved": [
                        {"path": _rel(item.path, paths.root), "reason": item.reason} for item in plan.failed
                    ],
                    "freedBytes": plan.freed.content,
                    "freedDiskBytes": plan.freed.disk,
                },
                indent=2,
            )
        )
    else:
        verb = "would remove" if args.dry_run else "removed"
        say = print if args.dry_run else output.summary  # a dry run's plan is what was asked for
        for key in plan.remove:
            say(f"{verb} {key}")
        for stage in plan.stale_staging:
            say(f"{verb} abandoned staging of {_stage_version(stage, staging_root)}")
        from dscache.api.sizes import format_size

        left = f"; {len(plan.left)} deletion(s) left for a later run" if plan.left else ""
        freed = (
            f"{'would free' if args.dry_run else 'freed'} {format_size(plan.freed.disk)} on disk "
            f"({format_size(plan.freed.content)} of file content)"
        )
        say(f"{verb} {len(plan.remove)} version(s), kept {len(plan.keep)}, {freed}{left}")
        for item in plan.failed:
            output.error(f"{_rel(item.path, paths.root)}: not removed (left in place, whole): {item.reason}")
    return EXIT_FAILURE if plan.failed else EXIT_OK


def _rel(path: Path, root: Path) -> str:
    """`path` relative to `root` (the cache), as the other lines of gc name paths."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
