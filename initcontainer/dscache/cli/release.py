"""`dscache release --cache DIR --ref NAME`: drop a ref and remove the versions only it used.

Run by the operator's cleanup Job when a DatasetCache with `retention.onDelete: Delete` is deleted.
Versions another ref (another DatasetCache on the same volume) or a `--protect`ed pod still uses are
kept. Versions go first and the ref last, so a cleanup that crashes midway is simply run again.
Entries that cannot be deleted yet are reported as in `gc` (warning, `left`, exit code 0).
"""

from __future__ import annotations

import argparse
import json

from dscache.cli import output
from dscache.cli.argtypes import path_arg
from dscache.cli.common import add_lock_timeout_argument, add_protect_argument, fail, run_locked
from dscache.cli.exits import EXIT_OK, exit_code
from dscache.cli.gc import warn_left
from dscache.store.paths import CachePaths

EXAMPLES = """\
  dscache release --cache /data/cache --ref research.molmo-assets
  dscache release --cache /data/cache --ref research.molmo-assets --protect objects/thor=v1 --json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=path_arg, required=True, metavar="DIR", help="a cache directory")
    p.add_argument("--ref", required=True, help="the ref to drop (a DatasetCache's is <namespace>.<name>)")
    add_protect_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_lock_timeout_argument(p)


def run(args: argparse.Namespace) -> int:
    from dscache.api.names import NameError_, check_segment, parse_version_arg
    from dscache.maintain.release import release
    from dscache.store.ownpaths import removal_writes

    try:
        check_segment(args.ref, "--ref")
        protect = {parse_version_arg(v, "--protect") for v in args.protect}
        in_use = {parse_version_arg(v, "--in-use") for v in args.in_use}
    except NameError_ as err:
        return fail(str(err), exit_code(err))
    plan = run_locked(
        args.cache,
        args.lock_timeout,
        lambda cache, fence: release(cache, args.ref, fence, protect, in_use),
        removal_writes("release", refs=True),
    )
    if isinstance(plan, int):
        return plan
    removed, kept, left = (plan.remove, plan.keep, plan.left) if plan is not None else ([], [], [])
    root = CachePaths(args.cache).root
    warn_left(left, root)
    if args.json:
        print(
            json.dumps(
                {
                    "ref": args.ref,
                    "found": plan is not None,
                    "removed": [str(k) for k in removed],
                    "kept": [str(k) for k in kept],
                    "left": [leftover.as_json(root) for leftover in left],
                }
            )
        )
    elif plan is None:
        output.summary(f"no ref {args.ref}: nothing to release")
    else:
        for key in removed:
            output.summary(f"removed {key}")
        for key in kept:
            output.summary(f"kept {key} (still used)")
        output.summary(f"released ref {args.ref}: removed {len(removed)} version(s), kept {len(kept)}")
    return EXIT_OK
