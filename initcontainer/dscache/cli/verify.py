"""`dscache verify --cache DIR [--content]`: exit 1 naming every version and path that differs from its
record (sizes, types and modes; with --content also bytes), and how to repair it (`dscache install ...
--repair`). Why bytes only on request: see `maintain/verify.py`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from dscache.cli import output
from dscache.cli.argtypes import path_arg
from dscache.cli.common import cache_dir_problem, fail, note_foreign
from dscache.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from dscache.store.members import shown_name

if TYPE_CHECKING:
    from dscache.maintain.verify import VersionCheck

SHOWN = 20
REPAIR_HINT = (
    "to repair a version, run its install again with --repair (dscache install -f FILE or --source ... "
    "--repair, and --content if verify needed --content to find it): only its damaged items are "
    "fetched, and a fresh copy replaces it atomically"
)
EXAMPLES = """\
  dscache verify --cache /data/cache
  dscache verify --cache /data/cache --content   # also hash every file (reads all bytes: slow)
  dscache verify --cache /data/cache --json > report.json || echo "some version differs" """


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=path_arg, required=True, metavar="DIR", help="a cache directory")
    p.add_argument(
        "--content",
        action="store_true",
        help="also hash every file against the digest recorded at install (reads every byte: about "
        "1 s per GB from the page cache, the disk's read rate otherwise); files extracted from "
        "archives by a dscache that did not hash them have no digest and are checked by size",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from dscache.maintain.verify import verify_version
    from dscache.store.catalog import damaged_note, scan
    from dscache.store.paths import CachePaths
    from dscache.store.records import scan_refs
    from dscache.store.refgaps import ref_gaps

    problem = cache_dir_problem("--cache", args.cache)
    if problem is not None:
        return fail(problem, EXIT_USAGE)
    cache = CachePaths(args.cache)
    found = scan(cache)
    checks = [verify_version(cache, record.key, content=args.content) for record in found.records]
    gaps = ref_gaps(cache, scan_refs(cache).refs)
    stranded = [g for g in gaps if not g.installing]
    note_foreign(found.foreign)
    bad = [c for c in checks if not c.ok]
    damaged = [str(d) for d in found.damaged]
    if args.json:
        print(
            json.dumps(
                {
                    "ok": not bad and not damaged and not stranded,
                    "versions": [
                        {
                            "version": str(c.key),
                            "ok": c.ok,
                            "missing": c.missing,
                            "extra": c.extra,
                            "changed": c.changed,
                            "modes": [
                                {"path": m.path, "mode": f"{m.have:04o}", "want": f"{m.want:04o}"}
                                for m in c.modes
                            ],
                            "unreadable": c.unreadable,
                            "error": c.error,
                            "hashedFiles": c.hashed,
                            "unhashedFiles": c.unhashed,
                            "content": _content_json(c),
                        }
                        for c in checks
                    ],
                    "damaged": damaged,
                    "refGaps": [
                        {"ref": g.ref, "version": str(g.key), "installing": g.installing} for g in gaps
                    ],
                },
                indent=2,
            )
        )
    else:
        for c in checks:
            if c.ok:
                output.summary(f"ok       {c.key}{_checked(c)}")
                continue
            print(f"DIFFERS  {c.key}{_checked(c)}", file=sys.stderr)
            if c.error:
                print(f"  {c.error}", file=sys.stderr)
            for label, paths in (
                ("missing", c.missing),
                ("extra", c.extra),
                ("changed", c.changed),
                ("mode", [f"{m.path} ({m.problem})" for m in c.modes]),
                ("unreadable", [f"{path} ({why})" for path, why in sorted(c.unreadable.items())]),
            ):
                for path in paths[:SHOWN]:
                    print(f"  {label}: {shown_name(path)}", file=sys.stderr)
                if len(paths) > SHOWN:
                    print(f"  ... and {len(paths) - SHOWN} more {label}", file=sys.stderr)
        for where in found.damaged:
            print(f"DAMAGED  {damaged_note(where)}", file=sys.stderr)
        for gap in gaps:
            print(f"{'WAITING' if gap.installing else 'MISSING'}  {gap.message}", file=sys.stderr)
        total = len(checks) + len(damaged)
        hashed = _hashed(checks, args.content)
        gap_note = f"; {len(stranded)} version(s) named by refs not published" if stranded else ""
        output.summary(f"{len(checks) - len(bad)} of {total} version(s) intact{hashed}{gap_note}")
        if bad:
            print(REPAIR_HINT, file=sys.stderr)
    return EXIT_FAILURE if bad or damaged or stranded else EXIT_OK


def _hashed(checks: list[VersionCheck], content: bool) -> str:
    """Pure: what --content covered, for the summary line ("" without it)."""
    if not content:
        return ""
    hashed, unhashed = sum(c.hashed for c in checks), sum(c.unhashed for c in checks)
    by_size = f"; {unhashed} file(s) without a digest of their own checked by size" if unhashed else ""
    return f" ({hashed} file(s) hashed{by_size})"


def _checked(c: VersionCheck) -> str:
    """Pure: what --content checked of one version, after its key ("" without --content), e.g.
    "  (content: 0 file(s) hashed; by size only: 2 archive member(s), 5 other file(s))"."""
    if not c.content:
        return ""
    parts = [f"{c.hashed} file(s) hashed"]
    if c.not_read:
        parts.append(f"{c.not_read} already reported, not read")
    by_size = [
        f"{n} {what}" for n, what in ((c.members, "archive member(s)"), (c.others, "other file(s)")) if n
    ]
    if by_size:
        parts.append(f"by size only: {', '.join(by_size)}")
    return f"  (content: {'; '.join(parts)})"


def _content_json(c: VersionCheck) -> dict[str, int] | None:
    """Pure: what --content checked of one version (None without --content): files hashed against the
    digest recorded at install, files with a digest not read (already reported), and files checked by
    size only: archive members without a recorded sha256 (an older dscache's) and the others (dscache's
    manifests and flags)."""
    if not c.content:
        return None
    return {
        "hashedFiles": c.hashed,
        "notReadFiles": c.not_read,
        "archiveMembersBySize": c.members,
        "otherFilesBySize": c.others,
    }
