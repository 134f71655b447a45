"""`dscache status --cache DIR` (versions, sizes, refs) or `--scratch DIR` (what node-local scratch holds).

Per version, `bytes` is the apparent size (the sum of its files, as its completion record counts them:
dscache's own records not included); `storedBytes` the bytes of content of its distinct files on the
volume (inodes), dscache's records included since removing the version frees them too (as gc's
`freedBytes` counts), so an unshared version's `storedBytes` exceeds `bytes` by them;
`storedDiskBytes` the space they take on disk (allocated blocks, as `du` counts), and `sharedBytes`
those of them that another version links too (versions share unchanged files, see
`install/share.py`): deleting the version frees at most `storedBytes - sharedBytes` of content. The
table's `size` is content, `on disk` the allocated space. Staging is shown both ways too (`bytes`:
content, `diskBytes`). Counting inodes costs one `lstat` per file.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dscache.cli import output
from dscache.cli.argtypes import path_arg
from dscache.cli.common import cache_dir_problem, fail, note_foreign
from dscache.cli.exits import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from dscache.store.staged import Stage

EXAMPLES = """\
  dscache status --cache /data/cache
  dscache status --cache /data/cache --json | jq '.versions[].version'
  dscache status --scratch /mnt/nvme/dscache"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=path_arg, metavar="DIR", help="a cache directory")
    p.add_argument("--scratch", type=path_arg, metavar="DIR", help="a node-local scratch directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    if (args.cache is None) == (args.scratch is None):
        return fail("give exactly one of --cache DIR or --scratch DIR", EXIT_USAGE)
    flag, path = ("--cache", args.cache) if args.scratch is None else ("--scratch", args.scratch)
    problem = cache_dir_problem(flag, path)
    if problem is not None:
        return fail(problem, EXIT_USAGE)
    if args.scratch is not None:
        from dscache.prepare.scratch_status import run_scratch_status

        return run_scratch_status(args.scratch, args.json)
    from dscache.api.sizes import format_size
    from dscache.store.catalog import catalog, damaged_note, scan
    from dscache.store.paths import CachePaths
    from dscache.store.records import scan_refs
    from dscache.store.refgaps import ref_gaps
    from dscache.store.staged import find_stages
    from dscache.store.usage import versions_usage

    paths = CachePaths(args.cache)
    found = scan(paths)
    refs = scan_refs(paths)
    infos = catalog(paths, found, refs)
    stages = find_stages(paths)
    now = time.time()
    note_foreign(found.foreign)
    for where in found.damaged:
        output.warning(f"damaged: {damaged_note(where)}")
    for err in refs.unreadable:
        output.warning(f"{err}; gc and release refuse until then")
    gaps = ref_gaps(paths, refs.refs)
    for gap in gaps:
        output.warning(gap.message)
    usage = versions_usage({i.key: paths.version_dir(i.key) for i in infos})
    if args.json:
        rows = [
            {
                "dataType": i.record.data_type,
                "source": i.record.source,
                "version": i.record.version,
                "files": i.record.files,
                "bytes": i.record.bytes,
                "storedBytes": usage[i.key].stored,
                "storedDiskBytes": usage[i.key].stored_disk,
                "sharedBytes": usage[i.key].shared,
                "revision": i.record.revision,
                "installedAt": i.record.installed_at,
                "remote": i.record.remote,
                "refs": i.refs,
            }
            for i in infos
        ]
        ignored = [
            {"path": str(f.root), "version": None if f.key is None else str(f.key), "nestedCache": f.nested}
            for f in found.foreign
        ]
        staging = [
            {
                "version": s.version,
                "path": str(s.path),
                "bytes": s.tally.bytes,
                "diskBytes": s.tally.disk,
                "items": s.tally.items,
                "itemBytes": s.tally.item_bytes,
                "partialFiles": s.tally.partial,
                "partialBytes": s.tally.partial_bytes,
                "resumableFiles": s.tally.resumable,
                "resumableBytes": s.tally.resumable_bytes,
                "leftoverBytes": s.tally.leftover_bytes,
                "ageSeconds": round(s.age(now), 1),
                "published": s.published,
            }
            for s in stages
        ]
        unreadable = [{"path": str(e.path), "reason": e.reason} for e in refs.unreadable]
        report = {
            "cache": str(args.cache),
            "versions": rows,
            "staging": staging,
            "ignored": ignored,
            "damaged": [str(d) for d in found.damaged],
            "unreadableRefs": unreadable,
            "refGaps": [{"ref": g.ref, "version": str(g.key), "installing": g.installing} for g in gaps],
        }
        print(json.dumps(report, indent=2))
        return EXIT_OK
    from rich.table import Table

    from dscache.cli.console import report_console

    table = Table()
    cols = ("data type", "source", "version", "files", "size", "on disk", "shared", "installed at", "refs")
    for col in cols:
        table.add_column(col, justify="right" if col in ("files", "size", "on disk", "shared") else "left")
    for i in infos:
        r = i.record
        table.add_row(
            r.data_type,
            r.source,
            r.version,
            str(r.files),
            format_size(r.bytes),
            format_size(usage[i.key].stored_disk),
            format_size(usage[i.key].shared) if usage[i.key].shared else "-",
            r.installed_at,
            ", ".join(i.refs) or ("?" if refs.unreadable else "-"),
        )
    print(f"dscache: {args.cache}")  # not the table's title: rich wraps that to the table's width
    report_console().print(table)
    if not infos:
        print("no published versions")
    for line in staging_lines(stages, now):
        print(line)
    return EXIT_OK


def staging_lines(stages: Sequence[Stage], now: float) -> list[str]:
    """Pure: what interrupted installs left in staging, and what happens to it; [] if nothing."""
    from dscache.api.durations import format_age
    from dscache.api.sizes import format_size

    if not stages:
        return []
    lines = [
        "staged by interrupted installs (`dscache install` of the version keeps the finished items"
        " and resumes partial files with a resume record, the rest it fetches again; "
        "`install --dry-run` checks that against the remote; `dscache gc` removes staging once "
        "untouched for --staging-max-age, default 7 days):"
    ]
    for s in stages:
        t = s.tally
        partial = f", {t.partial} partial file(s) ({t.resumable} resumable)" if t.partial else ""
        again = f", {format_size(t.leftover_bytes)} fetched again" if t.leftover_bytes else ""
        fate = "; its version is published since: the next gc removes it" if s.published else ""
        lines.append(
            f"  {s.version}: {format_size(t.disk)} on disk ({format_size(t.bytes)} of file content): "
            f"{t.items} finished item(s){partial}; a rerun reuses "
            f"up to {format_size(t.item_bytes + t.resumable_bytes)}{again}; "
            f"last touched {format_age(s.age(now))}{fate}"
        )
    return lines
