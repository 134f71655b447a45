"""`dscache ls-remote SOURCE [DT[/SRC]]` (or `-f datasetcache.yaml`): the versions a remote holds.

One recursive listing of the remote (under `DT[/SRC]` when given) is cut into versions by
`dscache.layouts.offered`; for a Hugging Face source whose versions are revisions (the spec's
`revisionFromVersion`, or `--revisions`), the versions are the repo's branches and tags, each with
its commit and the files under the prefix at that commit. With `--cache DIR`, each version says
whether it is published there (and, for revisions, at which commit; for an Archives version, whether
the remote's dscache manifest now states other archives: "yes (differs from remote)", one small read
per installed version).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dscache.cli import output
from dscache.cli.argtypes import layout_arg, path_arg
from dscache.cli.common import cache_dir_problem, fail, source_env_problem
from dscache.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, exit_code
from dscache.errors import DscacheError

if TYPE_CHECKING:
    from dscache.api.names import VersionKey
    from dscache.api.spec import DatasetCacheSpec, Layout, Source
    from dscache.layouts.offered import Offered

EXAMPLES = """\
  dscache ls-remote s3://bucket/mujoco
  dscache ls-remote gs://bucket/mujoco objects/thor --cache /data/cache
  dscache ls-remote hf://models/OWNER/REPO --revisions models/llm --json
  dscache ls-remote -f datasetcache.yaml --cache /data/cache
  dscache ls-remote ./local-remote"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "where",
        nargs="*",
        metavar="SOURCE [DT[/SRC]]",
        help="the remote, as `install --source` takes it (s3://, gs://, az://, hf://, file:// or a local "
        "directory; plain http(s) cannot be listed), then optionally a data type or DT/SRC to list "
        "(with -f: only DT[/SRC])",
    )
    p.add_argument(
        "-f",
        "--file",
        type=path_arg,
        metavar="FILE",
        help="a DatasetCache manifest: its source, layout and sources",
    )
    p.add_argument(
        "--name", metavar="[NAMESPACE/]NAME", help="with -f: the DatasetCache, if it holds several"
    )
    p.add_argument("--cache", type=path_arg, metavar="DIR", help="also say which versions this cache holds")
    p.add_argument(
        "--layout",
        type=layout_arg,
        choices=["Archives", "Files"],
        help="only versions of this layout, any case (default: both, Archives where their manifest is)",
    )
    p.add_argument(
        "--revisions",
        action="store_true",
        help="hf:// only: the versions are the repo's branches and tags (as revisionFromVersion)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


@dataclass(frozen=True)
class _Query:
    """What to list: the remote, the layout, the sources known to exist, and the `DT[/SRC]` asked."""

    source: Source
    layout: Layout | None
    revisions: bool
    slots: tuple[tuple[str, str], ...]
    data_type: str | None
    src: str | None

    @property
    def prefix(self) -> str:
        return "/".join(p for p in (self.data_type, self.src) if p)


def _spec_parts(spec: DatasetCacheSpec) -> tuple[Layout, bool, tuple[tuple[str, str], ...]]:
    """The spec's layout, whether its versions are HF revisions, and its (data type, source) slots."""
    from dscache.install.pipeline import revision_per_version

    slots = tuple(sorted({(k.data_type, k.source) for k in spec.version_keys()}))
    return spec.layout, revision_per_version(spec), slots


def _query(args: argparse.Namespace) -> _Query:
    """Raises SpecError/NameError_ (usage) naming the argument."""
    from dscache.api.manifest import load_manifest, source_from_arg
    from dscache.api.names import check_segment, check_source
    from dscache.api.spec import SpecError

    where: list[str] = list(args.where)
    layout: Layout | None
    if args.file is not None:
        if len(where) > 1:
            raise SpecError("with -f, give at most DT[/SRC] (the source is the manifest's)")
        if args.layout or args.revisions:
            raise SpecError("with -f, the layout and revisionFromVersion are the manifest's")
        manifest = load_manifest(args.file, args.name)
        source = manifest.spec.source
        layout, revisions, slots = _spec_parts(manifest.spec)
        wanted = where[0] if where else None
    else:
        if args.name is not None:
            raise SpecError("--name chooses a DatasetCache in the -f file; it needs -f")
        if not where or len(where) > 2:
            raise SpecError("give SOURCE [DT[/SRC]] or -f DATASETCACHE.yaml [DT[/SRC]]")
        url = where[0]
        source = source_from_arg(url, "SOURCE")
        layout = args.layout
        revisions, slots = args.revisions, ()
        if revisions and source.hugging_face is None:
            raise SpecError("--revisions: only a hf:// source has revisions")
        if revisions and layout == "Archives":
            raise SpecError("--revisions lists files versions (revisionFromVersion); not --layout archives")
        wanted = where[1] if len(where) > 1 else None
    data_type, src = None, None
    if wanted is not None:
        data_type, _, rest = wanted.strip("/").partition("/")
        check_segment(data_type, "data type")
        src = check_source(rest, f"source of {data_type!r}") if rest else None
    if src is not None:
        slots = (*slots, (data_type or "", src))
    return _Query(source, layout, revisions, slots, data_type, src)


def _listed(query: _Query) -> list[Offered]:
    """The versions on the remote (RemoteError, LayoutError on failure)."""
    from dscache.layouts.offered import offered_versions
    from dscache.remotes.factory import open_remote

    remote = open_remote(query.source)
    if query.revisions:
        return _revisions(query, remote)
    found = offered_versions(remote.list_files(query.prefix), layout=query.layout, sources=query.slots)
    src = query.src
    return [o for o in found if (slot := _slot(o)) and (src is None or f"{slot[1]}/".startswith(f"{src}/"))]


def _slot(offered: Offered) -> tuple[str, str] | None:
    """(data type, source) of a version, also of one whose names dscache refuses."""
    key = offered.key
    return (key.data_type, key.source) if key is not None else offered.names


def _revisions(query: _Query, remote: Any) -> list[Offered]:
    """One version per branch and tag (per known DT/SRC, else unassigned), sized at its commit."""
    from dscache.api.names import NameError_, VersionKey
    from dscache.layouts.offered import Offered
    from dscache.remotes.factory import open_remote

    hf = query.source.hugging_face
    assert hf is not None
    slots = [s for s in query.slots if query.data_type in (None, s[0])]
    out: list[Offered] = []
    for ref in remote.list_refs():
        at = query.source.model_copy(update={"hugging_face": hf.model_copy(update={"revision": ref.commit})})
        files = open_remote(at).list_files("")
        size = sum(f.size for f in files)
        for data_type, src in slots or [("", "")]:
            try:
                key: VersionKey | None = VersionKey(data_type, src, ref.name) if data_type else None
            except NameError_:
                key = None  # a ref name that cannot be a version (e.g. with '/'): shown, not installable
            out.append(Offered(key, ref.name, "Files", len(files), size, ref.commit, ref.kind))
    return out


def _row(offered: Offered, cache: Path | None) -> dict[str, Any]:
    from dscache.store.paths import CachePaths
    from dscache.store.records import read_complete

    key = offered.key
    data_type, source = _slot(offered) or (None, None)
    row: dict[str, Any] = {
        "dataType": data_type,
        "source": source,
        "version": offered.version,
        "layout": offered.layout,
        "files": offered.files,
        "bytes": offered.bytes,
    }
    if offered.refused is not None:  # absent: installable (rows kept as before for existing readers)
        row.update(installable=False, notInstallableBecause=offered.refused)
    if offered.revision is not None:
        row.update(revision=offered.revision, refType=offered.ref_type)
    if offered.incomplete:
        row["incomplete"] = True
    if cache is not None:
        record = read_complete(CachePaths(cache).version_dir(key)) if key else None
        row["installed"] = record is not None
        if record is not None and record.revision:
            row["installedRevision"] = record.revision
    return row


def _mark_republished(rows: list[dict[str, Any]], listed: list[Offered], source: Source, cache: Path) -> None:
    """Set `installedDiffers` in the rows of installed Archives versions whose archives the remote's
    dscache manifest now states otherwise (republished since; one small read per such version)."""
    from dscache.install.provenance import checkable, differs_from_stated, stated_archives
    from dscache.remotes.factory import open_remote
    from dscache.store.paths import CachePaths
    from dscache.store.records import read_complete

    todo = []
    for row, offered in zip(rows, listed, strict=True):
        record = read_complete(CachePaths(cache).version_dir(offered.key)) if offered.key else None
        if (
            offered.key
            and offered.layout == "Archives"
            and checkable(record, offered.key, source.display_url())
        ):
            todo.append((row, offered.key, record))
    if not todo:
        return
    remote = open_remote(source)
    for row, key, record in todo:
        stated = stated_archives(remote, key)
        if stated is not None and record is not None and differs_from_stated(record, stated):
            row["installedDiffers"] = True


def _cell(row: dict[str, Any], column: str) -> str:
    from dscache.api.sizes import format_size

    value = row.get(column)
    if column == "bytes":
        return format_size(int(value or 0))
    if column == "layout" and row.get("incomplete"):
        return f"{value} (incomplete publish)"
    if column == "revision":
        return str(value)[:12] + (f" ({row['refType']})" if row.get("refType") else "")
    if column == "installable":
        return "NO (below)" if value is False else "yes"
    if column == "installed":
        if not value:
            return "no"
        installed = row.get("installedRevision")
        if installed and row.get("revision") and installed != row["revision"]:
            return f"yes, at {installed[:12]}"
        return "yes (differs from remote)" if row.get("installedDiffers") else "yes"
    return "-" if value is None else str(value)


def _table(rows: list[dict[str, Any]], cache: Path | None) -> str:
    columns = ["dataType", "source", "version", "layout", "files", "bytes"]
    columns += ["revision"] if any("revision" in r for r in rows) else []
    columns += ["installed"] if cache is not None else []
    columns += ["installable"] if any("installable" in r for r in rows) else []
    titles = {"dataType": "DATA TYPE", "bytes": "SIZE"}
    cells = [[titles.get(c, c.upper()) for c in columns], *[[_cell(r, c) for c in columns] for r in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    )


def _incomplete_hint(row: dict[str, Any], remote: str) -> str:
    """How to finish or clean a version whose publish did not finish, in one line."""
    from dscache.layouts.molmospaces import MOLMO_REMOTE_MANIFEST

    rel = f"{row['dataType']}/{row['source']}/{row['version']}"
    return (
        f"{row['dataType']}/{row['source']}={row['version']}: incomplete publish at {remote}/{rel} "
        f"(archives but no {MOLMO_REMOTE_MANIFEST}), not installable: run the same `dscache publish` "
        "again to finish it, or delete that directory"
    )


def http_refusal(url: str) -> str:
    """Pure: why `ls-remote` cannot list a plain http(s) remote, and what to do instead."""
    import shlex

    return (
        f"{url}: plain HTTP cannot list files (a web server gives no listing): list the remote the versions "
        "were published to (an s3://, gs://, az://, hf:// or file:// URL), or install a version by its name: "
        f"dscache install --cache DIR --source {shlex.quote(url)} --version DT/SRC=VER"
    )


def run(args: argparse.Namespace) -> int:
    from dscache.api.names import NameError_
    from dscache.api.spec import SpecError

    try:
        query = _query(args)
    except (SpecError, NameError_) as err:
        return fail(str(err), exit_code(err))
    problem = source_env_problem("ls-remote", query.source)
    if problem is not None:
        return fail(problem, EXIT_USAGE)
    if query.source.http is not None:
        return fail(http_refusal(query.source.display_url()), EXIT_FAILURE)
    if args.cache is not None:
        problem = cache_dir_problem("--cache", args.cache)
        if problem is not None:
            return fail(problem, EXIT_USAGE)
    try:
        listed = _listed(query)
        rows = [_row(o, args.cache) for o in listed]
        if args.cache is not None:
            _mark_republished(rows, listed, query.source, args.cache)
    except DscacheError as err:
        return fail(str(err), exit_code(err))
    by_name = all(o.key is None for o in listed if o.refused)
    why = "dscache refuses their names" if by_name else "see the reasons above"
    remote = query.source.display_url()
    refused = [r for r in rows if "installable" in r]
    if args.json:
        print(json.dumps({"remote": remote, "versions": rows, "notInstallable": len(refused)}, indent=2))
        return EXIT_OK
    if rows:
        print(_table(rows, args.cache))
        for row in rows:
            if row.get("incomplete"):
                output.warning(_incomplete_hint(row, remote))
    for row in refused:
        version = f"{row['dataType']}/{row['source']}/{row['version']}"
        print(f"not installable: {version}: {row['notInstallableBecause']}")
    where = f"{remote}/{query.prefix}".rstrip("/")
    if not rows:
        print(f"no versions under {where}")
    elif len(refused) == len(rows):
        found = "have names dscache refuses" if by_name else "are not installable (see above)"
        print(f"no installable versions under {where}: the {len(rows)} found {found}")
    elif refused:
        print(f"{len(refused)} of {len(rows)} versions are not installable: {why}")
    return EXIT_OK
