"""`dscache verify --cache DIR [--content]`: exit 1 naming every version and path that differs from its
record (sizes, types and modes; with --content also bytes), and per damaged version the command that
repairs it under a ref that already names it (`cli/repairhint.py`). Why bytes only on request: see
`maintain/verify.py`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from dscache.api.names import VersionKey
from dscache.cli import output
from dscache.cli.argtypes import path_arg
from dscache.cli.common import cache_dir_problem, fail, note_foreign
from dscache.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from dscache.store.members import shown_name

if TYPE_CHECKING:
    from pathlib import Path

    from dscache.cli.repairhint import RepairHint
    from dscache.maintain.verify import VersionCheck
    from dscache.store.paths import CachePaths
    from dscache.store.records import CompleteRecord

SHOWN = 20
REPAIR_HEAD = (
    "to repair, run each install again with --repair (only the damaged items are fetched, and a fresh "
    "copy replaces the version atomically; the ref stays as it is):"
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
    hints = _hints(cache, [c.key for c in bad], found.damaged, found.records, content=args.content)
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
                            "repair": _hint_json(hints.get(c.key)),
                        }
                        for c in checks
                    ],
                    "damaged": damaged,
                    "damagedRepairs": [
                        _hint_json(h) for h in hints.values() if h.key not in {c.key for c in bad}
                    ],
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
        if hints:
            print(REPAIR_HEAD, file=sys.stderr)
            for hint in hints.values():
                print(hint.line(), file=sys.stderr)
    return EXIT_FAILURE if bad or damaged or stranded else EXIT_OK


def _hints(
    cache: CachePaths,
    bad: list[VersionKey],
    damaged_dirs: list[Path],
    records: list[CompleteRecord],
    *,
    content: bool,
) -> dict[VersionKey, RepairHint]:
    """The repair command per version that differs (`bad`) and per version dir whose completion
    record is unreadable (its key read from its path), in that order."""
    from dscache.api.names import NameError_
    from dscache.cli.repairhint import repair_hint
    from dscache.store.records import scan_refs
    from dscache.store.shares import read_items

    layouts = dict.fromkeys(bad, "")
    for where in damaged_dirs:
        parts = where.relative_to(cache.root).parts
        try:
            key = VersionKey(parts[0], "/".join(parts[1:-1]), parts[-1])
        except (NameError_, IndexError):
            continue
        layouts[key] = read_items(key, where)[0]  # the items record says it (the other record cannot)
    if not layouts:
        return {}
    refs = scan_refs(cache).refs
    by_key = {r.key: r for r in records}
    return {
        k: repair_hint(cache.root, k, by_key.get(k), refs, content=content, layout=layout or "archives")
        for k, layout in layouts.items()
    }


def _hint_json(hint: RepairHint | None) -> dict[str, str] | None:
    """Pure: a repair hint as JSON (None: nothing to repair)."""
    return None if hint is None else {"version": str(hint.key), "command": hint.command, "note": hint.note}


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
