"""What a remote offers: its versions (data type, source, version, layout, files, bytes), found in one
recursive listing, for `dscache ls-remote`. Pure functions over `RemoteFile`s.

How a listing is cut into versions (`<dataType>/<source>/<version>/...`, a source may hold inner '/'):
- an `archives` version is a directory holding `mjthor_resource_file_to_size_mb.json`: its first
  segment is the data type, its last the version, the segments between the source (so sources with
  inner '/' are found exactly); its files and bytes are what the remote stores in that directory
  (archives and metadata; an HF repo that keeps its archives in tar shards lists only the metadata);
- a `files` version is every file under `<dt>/<src>/<ver>/`: `src` is the longest source the caller
  knows for `dt` (from a spec, or from the `DT/SRC` asked for) that the path continues, else the
  path's second segment (a files remote whose sources hold '/' needs them named);
- `layout` (the spec's spelling) None (auto) takes archive versions where their manifest is and
  files versions from the other files; `Archives` only the former, `Files` every file as a files
  version; a files version holding `dscache publish` archives and nothing else publish does not write
  (no molmospaces manifest) is an `archives` version marked `incomplete` (a publish that did not
  finish, `dscache.layouts.published.unfinished_publish`), never a files version. Paths too short to
  be a version (a README at the root) and hidden ones (a data type,
  source or version starting with '.': `.gitattributes`, `.git/`) belong to no version and are left
  out; a version whose names dscache refuses (`has space`, `ünï`) is offered with `refused`, the
  reason, so that `ls-remote` shows it as not installable instead of hiding it; so is a files
  version whose files `install` refuses (`layouts.files.files_problem`, one rule for both: a file
  named like dscache's records, `.dscache-complete.json`, a file that is also a directory);
- a directory holding the manifest is an archives version only when it is in no other archives
  version and in no files version (`<dt>/<src>/<ver>`, cut as above, that holds files outside every
  manifest directory): `models/y/v1/sub/mjthor_resource_file_to_size_mb.json` beside
  `models/y/v1/a.txt` is one of the two files of `models/y=v1`, not a version `models/y/v1=sub`.
  Without the sources named, a file directly in `objects/objaverse/part1/` thus makes that a files
  version (`objects/objaverse=part1`): name the source (`DT/SRC` or `-f`) to cut it right.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dscache.api.names import NameError_, VersionKey
from dscache.api.spec import Layout
from dscache.layouts.files import files_problem
from dscache.layouts.molmospaces import MOLMO_REMOTE_MANIFEST
from dscache.layouts.published import PUBLISH_LEASE, unfinished_publish
from dscache.remotes.base import RemoteFile


@dataclass(frozen=True)
class Offered:
    """One version on the remote. `revision`/`ref_type`: the commit and kind (branch, tag) of a Hugging
    Face revision that is the version (revisionFromVersion); None elsewhere."""

    key: VersionKey | None
    """None when the version is a revision and no data type/source was named to install it under."""
    version: str
    layout: Layout
    files: int
    bytes: int
    revision: str | None = None
    ref_type: str | None = None
    names: tuple[str, str] | None = None
    """(data type, source) as the remote spells them, for a version whose names are `refused`."""
    refused: str | None = None
    """Why dscache cannot install this version (a name it refuses), or None."""
    incomplete: bool = False
    """An archives version whose publish did not finish (archives without the molmospaces manifest):
    not installable until the publish is run again (see `dscache.publish.stale`)."""


Triple = tuple[str, str, str]
"""(data type, source, version) as the remote spells them, not yet checked."""


def _triple(data_type: str, source: str, version: str) -> Triple | None:
    """The names, unless one is empty or hidden (starts with '.'): those belong to no version."""
    names = (data_type, *source.split("/"), version)
    return None if any(not n or n.startswith(".") for n in names) else (data_type, source, version)


def _archive_dirs(listing: Iterable[RemoteFile]) -> dict[str, Triple]:
    """Directory -> names of every archives version (a directory holding the molmospaces manifest)."""
    found: dict[str, Triple] = {}
    for rf in listing:
        folder, _, name = rf.path.rpartition("/")
        segs = folder.split("/")
        if name == MOLMO_REMOTE_MANIFEST and len(segs) >= 3:
            triple = _triple(segs[0], "/".join(segs[1:-1]), segs[-1])
            if triple is not None:
                found[folder] = triple
    return found


def _inside(folder: str, dirs: Mapping[str, object] | set[str]) -> bool:
    """Whether `folder` is one of `dirs` or below one (a lookup per ancestor, not per dir)."""
    while folder:
        if folder in dirs:
            return True
        folder = folder.rpartition("/")[0]
    return False


def _outermost(
    files: list[RemoteFile], candidates: dict[str, Triple], known: dict[str, list[str]]
) -> dict[str, Triple]:
    """The archives versions among `candidates`: not those below another one (a manifest inside an
    archives version is one of its files), nor those inside a files version, a directory
    `<dt>/<src>/<ver>` (cut as `_files_key` cuts) that holds files outside every candidate (a
    manifest in `models/y/v1/sub/` beside `models/y/v1/a.txt` is a file of `models/y=v1`)."""
    top = {d: t for d, t in candidates.items() if not _inside(d.rpartition("/")[0], candidates)}
    roots: set[str] = set()
    for rf in files:
        if not _inside(rf.path.rpartition("/")[0], top):
            key = _files_key(rf.path, known)
            if key is not None:
                roots.add("/".join(key))
    return {d: t for d, t in top.items() if not _inside(d.rpartition("/")[0], roots)}


def _files_key(path: str, known: dict[str, list[str]]) -> Triple | None:
    """The files version `path` belongs to, by the longest known source of its data type."""
    data_type, _, rest = path.partition("/")
    for source in sorted(known.get(data_type, ()), key=len, reverse=True):
        if rest.startswith(f"{source}/"):
            version, slash, _file = rest[len(source) + 1 :].partition("/")
            return _triple(data_type, source, version) if slash else None
    segs = path.split("/")
    return _triple(segs[0], segs[1], segs[2]) if len(segs) >= 4 else None


def _offered(
    triple: Triple, layout: Layout, files: int, size: int, *, incomplete: bool, problem: str | None
) -> Offered:
    """The version `triple` names, or, when dscache refuses a name, the same marked `refused`; a files
    version whose files `install` would refuse (`problem`, `files.files_problem`) is marked too."""
    try:
        key = VersionKey(*triple)
    except NameError_ as err:
        return Offered(
            None, triple[2], layout, files, size, names=triple[:2], refused=str(err), incomplete=incomplete
        )
    return Offered(key, key.version, layout, files=files, bytes=size, incomplete=incomplete, refused=problem)


def offered_versions(
    listing: Iterable[RemoteFile], *, layout: Layout | None = None, sources: Iterable[tuple[str, str]] = ()
) -> list[Offered]:
    """Pure: the versions in a recursive `listing` (paths relative to the remote's base), sorted by
    names. `sources`: (data type, source) pairs known to exist, to cut paths whose sources hold '/'."""
    files = [f for f in listing if f.path.rpartition("/")[2] != PUBLISH_LEASE]  # a publish's, not data
    known: dict[str, list[str]] = {}
    for data_type, source in sources:
        known.setdefault(data_type, []).append(source)
    archive_dirs = _outermost(files, _archive_dirs(files), known) if layout != "Files" else {}
    totals: dict[tuple[Triple, Layout], list[int]] = {}
    names: dict[Triple, list[str]] = {}  # files versions: paths inside the version
    for rf in files:
        folder = rf.path.rpartition("/")[0]
        archived = archive_dirs.get(folder)
        entry: tuple[Triple, Layout]
        if archived is not None:
            entry = (archived, "Archives")
        else:
            key = _files_key(rf.path, known)
            if key is None or _inside(folder, archive_dirs):
                continue
            entry = (key, "Files")
            names.setdefault(key, []).append(rf.path[len("/".join(key)) + 1 :])
        count = totals.setdefault(entry, [0, 0])
        count[0] += 1
        count[1] += rf.size
    broken = {k for k, inside in names.items() if layout != "Files" and unfinished_publish(inside)}
    problems = {k: files_problem("/".join(k), inside) for k, inside in names.items() if k not in broken}
    return [
        _offered(
            triple,
            "Archives" if triple in broken else kind,
            n,
            size,
            incomplete=triple in broken,
            problem=problems.get(triple) if kind == "Files" else None,
        )
        for (triple, kind), (n, size) in sorted(totals.items(), key=lambda e: (e[0][0], e[0][1]))
        if layout != "Archives" or kind == "Archives" or triple in broken
    ]
